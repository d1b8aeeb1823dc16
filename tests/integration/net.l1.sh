# virtio-net on a tap: L2 and L1 ping each other across it, a burst of
# more frames than L2 has receive buffers all arrives, and the
# virtio-console carries a line from L2 to a host file.
. /scenarios/lib.sh
( run_l2 /tmp/net.log 300 net --cpus 1 --memory 256M --net tap=vmtap0 \
	--console file=/tmp/hvc.log; echo $? >/tmp/net.rc ) &
check "tap interface created by the VMM" wait_for "[ -e /sys/class/net/vmtap0 ]" 120
ip addr add 192.168.77.1/24 dev vmtap0
ip link set vmtap0 up
check "L1 -> L2 ping over the tap" wait_for "ping -c 1 -W 2 192.168.77.2 >/dev/null" 120
# 400 datagrams (more than the guest's 256 receive buffers) queued in the
# tap while the VMM is stopped: it must deliver them all, in rounds of a
# queue's worth, with no further frame to wake it.
wait_for "grep -q L2-RX-READY /tmp/net.log" 120
vmm_pid=$(pidof vmm)
kill -STOP $vmm_pid
check "a burst of 400 datagrams queued in the tap" udp_burst 192.168.77.2 9 400
kill -CONT $vmm_pid
wait_for "[ -e /tmp/net.rc ]" 300
check "vmm exits 0" [ "$(cat /tmp/net.rc)" = 0 ]
check "L2 -> L1 ping over the tap" grep -q "L2-PING: ok" /tmp/net.log
burst=$(tr -d '\r' </tmp/net.log | sed -n 's/.*L2-BURST: \([0-9]*\) datagrams.*/\1/p')
echo "L2 received ${burst:-no count} datagrams of the burst"
check "all 400 datagrams of the burst reached L2" [ "${burst:-0}" -eq 400 ]
check "virtio-console line reached the host file" grep -q "HVC-HELLO-FROM-L2" /tmp/hvc.log
finish
