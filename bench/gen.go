package bench

// The sweep object is committed like every other BPF object, so building the
// bench needs no clang; `go generate ./bench` reproduces it.
//go:generate go tool bpf2go -cc clang -cflags "-O2 -g -Wall -Werror -mcpu=v3 -I/usr/include/x86_64-linux-gnu" -target bpfel -go-package bench -no-global-types sweep bpf/sweep.c
