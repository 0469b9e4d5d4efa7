package leastconn

// The SDK's contract headers (bpf/lib) come from the hotpath module, here
// through the replace in go.mod; a vendor outside this repository points -I
// at $(go list -m -f '{{.Dir}}' github.com/hotpath/hotpath)/bpf instead.
//go:generate go tool bpf2go -cc clang -cflags "-O2 -g -Wall -Werror -mcpu=v3 -I/usr/include/x86_64-linux-gnu -I../../../bpf" -target bpfel -go-package leastconn -no-global-types leastconn ../bpf/leastconn.c
