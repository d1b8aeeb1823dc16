/*
 * DSDT for the lean VMM (x86, hardware-reduced ACPI).
 *
 * Compiled by iasl into dsdt_aml[] (see the Makefile). acpi/tables.c copies
 * it into the guest's ACPI area and overwrites the values marked PATCHED
 * below with the VM's configuration, locating each by its descriptor header
 * and the placeholder value written here; if you change a placeholder, change
 * the matching DSDT_PH_* constant in tables.c too.
 */
DefinitionBlock ("", "DSDT", 2, "LEANVM", "LEANVM  ", 1)
{
    /*
     * S5 (soft off). Hardware-reduced: OSPM writes
     * (SLP_TYP << 2) | SLP_EN (1 << 5) to the FADT sleep control register.
     * SLP_TYP must equal ACPI_S5_SLP_TYP in vmm/vm.h.
     */
    Name (\_S5, Package (4) { 5, 5, 0, 0 })

    Scope (\_SB)
    {
        /* PCI host bridge: segment 0, bus 0, ECAM from MCFG. */
        Device (PCI0)
        {
            Name (_HID, EisaId ("PNP0A08"))     /* PCI Express root bridge */
            Name (_CID, EisaId ("PNP0A03"))     /* PCI root bridge */
            Name (_SEG, 0)
            Name (_UID, 0)
            Name (_BBN, 0xBB)                   /* PATCHED: bus_start */

            Name (_CRS, ResourceTemplate ()
            {
                /* PATCHED: bus_start .. bus_end */
                WordBusNumber (ResourceProducer, MinFixed, MaxFixed, PosDecode,
                    0x0000,             /* granularity */
                    0x0000,             /* min */
                    0x0000,             /* max */
                    0x0000,             /* translation */
                    0x0001)             /* length */
                /* I/O ports, less the 0xCF8-0xCFF config mechanism. */
                WordIO (ResourceProducer, MinFixed, MaxFixed, PosDecode, EntireRange,
                    0x0000, 0x0000, 0x0CF7, 0x0000, 0x0CF8)
                WordIO (ResourceProducer, MinFixed, MaxFixed, PosDecode, EntireRange,
                    0x0000, 0x0D00, 0xFFFF, 0x0000, 0xF300)
                /* PATCHED: 32-bit BAR window (mmio32_base/size). */
                DWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed,
                    NonCacheable, ReadWrite,
                    0x00000000,         /* granularity */
                    0xC0000000,         /* min */
                    0xDFFFFFFF,         /* max */
                    0x00000000,         /* translation */
                    0x20000000)         /* length */
                /* PATCHED: 64-bit BAR window above RAM (mmio64_base/size). */
                QWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed,
                    NonCacheable, ReadWrite,
                    0x0000000000000000, /* granularity */
                    0x0000008000000000, /* min */
                    0x000000BFFFFFFFFF, /* max */
                    0x0000000000000000, /* translation */
                    0x0000004000000000) /* length */
            })

            /*
             * Legacy INTx: GSI mode (source 0). Slot s, pin p (0 = INTA)
             * -> GSI 16 + ((s + p) % 8); acpi_pci_intx_gsi() in tables.c
             * computes the same.
             */
            Name (_PRT, Package ()
            {
            Package () { 0x0000FFFF, 0, 0, 16 }, Package () { 0x0000FFFF, 1, 0, 17 }, Package () { 0x0000FFFF, 2, 0, 18 }, Package () { 0x0000FFFF, 3, 0, 19 },
            Package () { 0x0001FFFF, 0, 0, 17 }, Package () { 0x0001FFFF, 1, 0, 18 }, Package () { 0x0001FFFF, 2, 0, 19 }, Package () { 0x0001FFFF, 3, 0, 20 },
            Package () { 0x0002FFFF, 0, 0, 18 }, Package () { 0x0002FFFF, 1, 0, 19 }, Package () { 0x0002FFFF, 2, 0, 20 }, Package () { 0x0002FFFF, 3, 0, 21 },
            Package () { 0x0003FFFF, 0, 0, 19 }, Package () { 0x0003FFFF, 1, 0, 20 }, Package () { 0x0003FFFF, 2, 0, 21 }, Package () { 0x0003FFFF, 3, 0, 22 },
            Package () { 0x0004FFFF, 0, 0, 20 }, Package () { 0x0004FFFF, 1, 0, 21 }, Package () { 0x0004FFFF, 2, 0, 22 }, Package () { 0x0004FFFF, 3, 0, 23 },
            Package () { 0x0005FFFF, 0, 0, 21 }, Package () { 0x0005FFFF, 1, 0, 22 }, Package () { 0x0005FFFF, 2, 0, 23 }, Package () { 0x0005FFFF, 3, 0, 16 },
            Package () { 0x0006FFFF, 0, 0, 22 }, Package () { 0x0006FFFF, 1, 0, 23 }, Package () { 0x0006FFFF, 2, 0, 16 }, Package () { 0x0006FFFF, 3, 0, 17 },
            Package () { 0x0007FFFF, 0, 0, 23 }, Package () { 0x0007FFFF, 1, 0, 16 }, Package () { 0x0007FFFF, 2, 0, 17 }, Package () { 0x0007FFFF, 3, 0, 18 },
            Package () { 0x0008FFFF, 0, 0, 16 }, Package () { 0x0008FFFF, 1, 0, 17 }, Package () { 0x0008FFFF, 2, 0, 18 }, Package () { 0x0008FFFF, 3, 0, 19 },
            Package () { 0x0009FFFF, 0, 0, 17 }, Package () { 0x0009FFFF, 1, 0, 18 }, Package () { 0x0009FFFF, 2, 0, 19 }, Package () { 0x0009FFFF, 3, 0, 20 },
            Package () { 0x000AFFFF, 0, 0, 18 }, Package () { 0x000AFFFF, 1, 0, 19 }, Package () { 0x000AFFFF, 2, 0, 20 }, Package () { 0x000AFFFF, 3, 0, 21 },
            Package () { 0x000BFFFF, 0, 0, 19 }, Package () { 0x000BFFFF, 1, 0, 20 }, Package () { 0x000BFFFF, 2, 0, 21 }, Package () { 0x000BFFFF, 3, 0, 22 },
            Package () { 0x000CFFFF, 0, 0, 20 }, Package () { 0x000CFFFF, 1, 0, 21 }, Package () { 0x000CFFFF, 2, 0, 22 }, Package () { 0x000CFFFF, 3, 0, 23 },
            Package () { 0x000DFFFF, 0, 0, 21 }, Package () { 0x000DFFFF, 1, 0, 22 }, Package () { 0x000DFFFF, 2, 0, 23 }, Package () { 0x000DFFFF, 3, 0, 16 },
            Package () { 0x000EFFFF, 0, 0, 22 }, Package () { 0x000EFFFF, 1, 0, 23 }, Package () { 0x000EFFFF, 2, 0, 16 }, Package () { 0x000EFFFF, 3, 0, 17 },
            Package () { 0x000FFFFF, 0, 0, 23 }, Package () { 0x000FFFFF, 1, 0, 16 }, Package () { 0x000FFFFF, 2, 0, 17 }, Package () { 0x000FFFFF, 3, 0, 18 },
            Package () { 0x0010FFFF, 0, 0, 16 }, Package () { 0x0010FFFF, 1, 0, 17 }, Package () { 0x0010FFFF, 2, 0, 18 }, Package () { 0x0010FFFF, 3, 0, 19 },
            Package () { 0x0011FFFF, 0, 0, 17 }, Package () { 0x0011FFFF, 1, 0, 18 }, Package () { 0x0011FFFF, 2, 0, 19 }, Package () { 0x0011FFFF, 3, 0, 20 },
            Package () { 0x0012FFFF, 0, 0, 18 }, Package () { 0x0012FFFF, 1, 0, 19 }, Package () { 0x0012FFFF, 2, 0, 20 }, Package () { 0x0012FFFF, 3, 0, 21 },
            Package () { 0x0013FFFF, 0, 0, 19 }, Package () { 0x0013FFFF, 1, 0, 20 }, Package () { 0x0013FFFF, 2, 0, 21 }, Package () { 0x0013FFFF, 3, 0, 22 },
            Package () { 0x0014FFFF, 0, 0, 20 }, Package () { 0x0014FFFF, 1, 0, 21 }, Package () { 0x0014FFFF, 2, 0, 22 }, Package () { 0x0014FFFF, 3, 0, 23 },
            Package () { 0x0015FFFF, 0, 0, 21 }, Package () { 0x0015FFFF, 1, 0, 22 }, Package () { 0x0015FFFF, 2, 0, 23 }, Package () { 0x0015FFFF, 3, 0, 16 },
            Package () { 0x0016FFFF, 0, 0, 22 }, Package () { 0x0016FFFF, 1, 0, 23 }, Package () { 0x0016FFFF, 2, 0, 16 }, Package () { 0x0016FFFF, 3, 0, 17 },
            Package () { 0x0017FFFF, 0, 0, 23 }, Package () { 0x0017FFFF, 1, 0, 16 }, Package () { 0x0017FFFF, 2, 0, 17 }, Package () { 0x0017FFFF, 3, 0, 18 },
            Package () { 0x0018FFFF, 0, 0, 16 }, Package () { 0x0018FFFF, 1, 0, 17 }, Package () { 0x0018FFFF, 2, 0, 18 }, Package () { 0x0018FFFF, 3, 0, 19 },
            Package () { 0x0019FFFF, 0, 0, 17 }, Package () { 0x0019FFFF, 1, 0, 18 }, Package () { 0x0019FFFF, 2, 0, 19 }, Package () { 0x0019FFFF, 3, 0, 20 },
            Package () { 0x001AFFFF, 0, 0, 18 }, Package () { 0x001AFFFF, 1, 0, 19 }, Package () { 0x001AFFFF, 2, 0, 20 }, Package () { 0x001AFFFF, 3, 0, 21 },
            Package () { 0x001BFFFF, 0, 0, 19 }, Package () { 0x001BFFFF, 1, 0, 20 }, Package () { 0x001BFFFF, 2, 0, 21 }, Package () { 0x001BFFFF, 3, 0, 22 },
            Package () { 0x001CFFFF, 0, 0, 20 }, Package () { 0x001CFFFF, 1, 0, 21 }, Package () { 0x001CFFFF, 2, 0, 22 }, Package () { 0x001CFFFF, 3, 0, 23 },
            Package () { 0x001DFFFF, 0, 0, 21 }, Package () { 0x001DFFFF, 1, 0, 22 }, Package () { 0x001DFFFF, 2, 0, 23 }, Package () { 0x001DFFFF, 3, 0, 16 },
            Package () { 0x001EFFFF, 0, 0, 22 }, Package () { 0x001EFFFF, 1, 0, 23 }, Package () { 0x001EFFFF, 2, 0, 16 }, Package () { 0x001EFFFF, 3, 0, 17 },
            Package () { 0x001FFFFF, 0, 0, 23 }, Package () { 0x001FFFFF, 1, 0, 16 }, Package () { 0x001FFFFF, 2, 0, 17 }, Package () { 0x001FFFFF, 3, 0, 18 }
            })
        }

        /* Motherboard resources: reserves the ECAM window so that Linux
         * keeps using MCFG. PATCHED: ecam_base + (bus_start << 20), size. */
        Device (MRES)
        {
            Name (_HID, EisaId ("PNP0C02"))
            Name (_UID, 0)
            Name (_CRS, ResourceTemplate ()
            {
                Memory32Fixed (ReadWrite, 0xE0000000, 0x00100000)
            })
        }

        /* COM1: 16550 UART. */
        Device (COM1)
        {
            Name (_HID, EisaId ("PNP0501"))
            Name (_UID, 1)
            Name (_CRS, ResourceTemplate ()
            {
                IO (Decode16, 0x03F8, 0x03F8, 0x01, 0x08)
                IRQNoFlags () { 4 }
            })
        }
    }
}
