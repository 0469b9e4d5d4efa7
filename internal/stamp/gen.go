// Package stamp loads the test stages that prove pipeline atomicity: two
// stamping stages and a check stage (bpf/stamp.c).
package stamp

//go:generate go tool bpf2go -cc clang -cflags "-O2 -g -Wall -Werror -mcpu=v3 -I/usr/include/x86_64-linux-gnu -I../../bpf" -target bpfel -go-package stamp -no-global-types stamp bpf/stamp.c
