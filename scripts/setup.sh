#!/usr/bin/env bash
# Install the build and runner dependencies from Debian's archive (root).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends \
	build-essential clang libclang-rt-14-dev pkg-config git file \
	libaio-dev libfdt-dev liblz4-dev libcmocka-dev acpica-tools \
	linux-source-6.12 bc flex bison libelf-dev libssl-dev dwarves cpio xz-utils kmod \
	busybox-static qemu-system-x86 qemu-utils rsync lz4
