$ORIGIN example.com.
$TTL 3600
@       IN  SOA ns1.example.com. hostmaster.example.com. (
                2026112601  ; serial
                3600        ; refresh
                900         ; retry
                604800      ; expire
                300         ; minimum (negative caching TTL)
                )

        IN  NS  ns1.example.com.
        IN  NS  ns2.example.com.
        IN  MX  10 mail.example.com.
        IN  TXT "v=spf1 mx -all"

ns1     IN  A     192.0.2.1
ns2     IN  A     192.0.2.2
        IN  AAAA  2001:db8::2
mail    IN  A     192.0.2.25
www     IN  A     192.0.2.80
        IN  AAAA  2001:db8::80
web     IN  CNAME www
*.apps  IN  A     192.0.2.100
_sip._udp IN SRV 10 60 5060 www.example.com.

; A delegated child zone with its glue.
shop    IN  NS    ns1.shop.example.com.
ns1.shop IN A     192.0.2.53
