package cli

import (
	"strings"

	"github.com/urfave/cli/v2"
)

// interspersed moves the leaf command's flags ahead of its positional
// arguments. urfave/cli v2 stops parsing flags at the first positional, but
// the CLI contract is `hotpath plugin upgrade NAME --binary PATH` and
// `hotpath lb service add VIP --backend ...`.
func interspersed(app *cli.App, args []string) []string {
	cmds, flags := app.Commands, app.Flags
	var leaf *cli.Command
	i := 1
	for i < len(args) {
		a := args[i]
		if isFlag(a) {
			if takesValue(flags, a) {
				i++
			}
			i++
			continue
		}
		c := findCommand(cmds, a)
		if c == nil {
			break
		}
		leaf, cmds, flags = c, c.Subcommands, c.Flags
		i++
		if len(cmds) == 0 {
			break
		}
	}
	if leaf == nil || len(leaf.Subcommands) > 0 {
		return args
	}
	var fl, pos []string
	for j := i; j < len(args); j++ {
		a := args[j]
		if a == "--" {
			pos = append(pos, args[j:]...)
			break
		}
		if !isFlag(a) {
			pos = append(pos, a)
			continue
		}
		fl = append(fl, a)
		if takesValue(leaf.Flags, a) && j+1 < len(args) {
			fl = append(fl, args[j+1])
			j++
		}
	}
	out := append([]string{}, args[:i]...)
	return append(append(out, fl...), pos...)
}

func isFlag(a string) bool { return len(a) > 1 && a[0] == '-' }

// takesValue tells whether flag token a (without =value) consumes the next arg.
func takesValue(flags []cli.Flag, a string) bool {
	if strings.Contains(a, "=") {
		return false
	}
	name := strings.TrimLeft(a, "-")
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				_, isBool := f.(*cli.BoolFlag)
				return !isBool
			}
		}
	}
	return false
}

func findCommand(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}
