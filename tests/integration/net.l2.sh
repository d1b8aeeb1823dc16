ip link set lo up
ip addr add 192.168.77.2/24 dev eth0
ip link set eth0 up
i=0
res=failed
while [ $i -lt 60 ]; do
	if ping -c 1 -W 2 192.168.77.1 >/dev/null 2>&1; then res=ok; break; fi
	i=$((i + 1))
done
echo "L2-PING: $res"
echo "HVC-HELLO-FROM-L2" >/dev/hvc0
# A burst of 400 datagrams from L1, sent while the VMM was stopped so that
# they wait in the tap together (more than the 256 receive buffers): count
# those that arrive (to a port nobody listens on: UDP's NoPorts, so that
# other frames do not count), until all have or 60 s went by.
rx() { awk '/^Udp:/ && ++n == 2 { print $3 }' /proc/net/snmp; }
base=$(rx)
echo "L2-RX-READY"
i=0
while [ $i -lt 60 ] && [ $(($(rx) - base)) -lt 400 ]; do
	sleep 1
	i=$((i + 1))
done
echo "L2-BURST: $(($(rx) - base)) datagrams"
