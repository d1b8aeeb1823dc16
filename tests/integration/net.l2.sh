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
# Give L1 time to ping us too.
sleep 8
