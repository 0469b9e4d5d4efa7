package ct

//go:generate go tool bpf2go -cc clang -cflags "-O2 -g -Wall -Werror -mcpu=v3 -I/usr/include/x86_64-linux-gnu -I../../bpf" -target bpfel -go-package ct -no-global-types ct bpf/ct.c

//go:generate go tool bpf2go -cc clang -cflags "-O2 -g -Wall -Werror -mcpu=v3 -I/usr/include/x86_64-linux-gnu -I../../bpf" -target bpfel -go-package ct -no-global-types ctsweep bpf/ct_sweep.c
