// Package abi holds the Go mirrors of bpf/lib/abi.h and the specs of the
// shared maps, both generated from bpf/abi.c: every type a map or a global of
// that object refers to is mirrored.
package abi

//go:generate go tool bpf2go -cc clang -cflags "-O2 -g -Wall -Werror -mcpu=v3 -I/usr/include/x86_64-linux-gnu" -target bpfel -go-package abi Abi ../../bpf/abi.c
