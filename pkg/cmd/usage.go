package cmd

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"text/template"
	"unicode"

	"github.com/spf13/cobra"
	flag "github.com/spf13/pflag"
	"k8s.io/kubectl/pkg/util/templates"
	"k8s.io/kubectl/pkg/util/term"
)

// sectionTipsHelp replaces templates.SectionTipsHelp, which names commands by
// their bare names ("bound-token <command> --help"): a plugin is run as
// "kubectl bound-token", the root's display name, which CommandPath carries.
const sectionTipsHelp = `{{if .HasSubCommands}}Use "{{.CommandPath}} <command> --help" for more information about a given command.
{{end}}`

// usageTemplate is kubectl's usage template (templates.MainUsageTemplate)
// with sectionTipsHelp in place of its --help hint.
var usageTemplate = strings.TrimRightFunc(strings.Join([]string{
	"\n\n",
	templates.SectionVars,
	templates.SectionAliases,
	templates.SectionExamples,
	templates.SectionSubcommands,
	templates.SectionFlags,
	templates.SectionUsage,
	sectionTipsHelp,
	templates.SectionTipsGlobalOptions,
}, ""), unicode.IsSpace)

// useDisplayNameInUsage installs usageTemplate on root, with the functions
// kubectl's templater gives its template (k8s.io/kubectl/pkg/util/templates,
// unexported there). Call it after templates.ActsAsRootCommand, with the
// same filters and groups: the help function stays kubectl's and renders
// this usage.
func useDisplayNameInUsage(root *cobra.Command, filters []string, groups templates.CommandGroups) {
	t := template.Must(template.New("usage").Funcs(usageFuncs(root, filters, groups)).Parse(usageTemplate))
	root.SetUsageFunc(func(c *cobra.Command) error {
		return t.Execute(term.NewResponsiveWriter(c.OutOrStderr()), c)
	})
}

// usageFuncs are the functions of usageTemplate for root.
func usageFuncs(root *cobra.Command, filters []string, groups templates.CommandGroups) template.FuncMap {
	u := &usageTree{root: root, filters: filters, groups: groups}
	return template.FuncMap{
		"trim":                strings.TrimSpace,
		"trimRight":           func(s string) string { return strings.TrimRightFunc(s, unicode.IsSpace) },
		"gt":                  cobra.Gt,
		"eq":                  cobra.Eq,
		"isRootCmd":           u.isRoot,
		"rootCmd":             func(*cobra.Command) string { return root.CommandPath() },
		"flagsNotIntersected": flagsNotIntersected,
		"visibleFlags":        visibleFlags,
		"exposed":             func(*cobra.Command) *flag.FlagSet { return flag.NewFlagSet("exposed", flag.ContinueOnError) },
		"flagsUsages":         flagsUsages,
		"optionsCmdFor":       u.optionsCmdFor,
		"usageLine":           usageLine,
		"reverseParentsNames": u.reverseParentsNames,
		"cmdGroupsString":     u.cmdGroupsString,
	}
}

// usageTree is what the template functions that walk the command tree
// need: its root, and the root's filters and groups of commands.
type usageTree struct {
	root    *cobra.Command
	filters []string
	groups  templates.CommandGroups
}

func (u *usageTree) isRoot(c *cobra.Command) bool { return c == u.root || !c.HasParent() }

// parents is c and its parents up to the root.
func (u *usageTree) parents(c *cobra.Command) []*cobra.Command {
	out := []*cobra.Command{c}
	for cur := c; !u.isRoot(cur); {
		cur = cur.Parent()
		out = append(out, cur)
	}
	return out
}

func (u *usageTree) optionsCmdFor(c *cobra.Command) string {
	if !c.Runnable() {
		return ""
	}
	ps := u.parents(c)
	for i := len(ps) - 1; i >= 0; i-- {
		if _, _, err := ps[i].Find([]string{"options"}); err == nil {
			return ps[i].CommandPath() + " options"
		}
	}
	return ""
}

func (u *usageTree) reverseParentsNames(c *cobra.Command) []string {
	ps := u.parents(c)
	out := make([]string, 0, len(ps))
	for i := len(ps) - 1; i >= 0; i-- {
		out = append(out, ps[i].Name())
	}
	return out
}

func (u *usageTree) cmdGroupsString(c *cobra.Command) string {
	gs := templates.CommandGroups{{Message: "Available Commands:", Commands: filterCommands(c.Commands(), "options")}}
	if len(u.groups) > 0 && c == u.root {
		gs = templates.AddAdditionalCommands(u.groups, "Other Commands:", filterCommands(c.Commands(), u.filters...))
	}
	var out []string
	for _, g := range gs {
		lines := []string{g.Message}
		for _, sub := range g.Commands {
			if sub.IsAvailableCommand() {
				lines = append(lines, fmt.Sprintf("  %-*s   %s", sub.NamePadding(), sub.Name(), sub.Short))
			}
		}
		out = append(out, strings.Join(lines, "\n"))
	}
	return strings.Join(out, "\n\n")
}

// filterCommands is cmds without the hidden ones and those named.
func filterCommands(cmds []*cobra.Command, names ...string) []*cobra.Command {
	var out []*cobra.Command
	for _, c := range cmds {
		if c.Hidden || slices.Contains(names, c.Name()) {
			continue
		}
		out = append(out, c)
	}
	return out
}

func flagsNotIntersected(l, r *flag.FlagSet) *flag.FlagSet {
	f := flag.NewFlagSet("notIntersected", flag.ContinueOnError)
	l.VisitAll(func(fl *flag.Flag) {
		if r.Lookup(fl.Name) == nil {
			f.AddFlag(fl)
		}
	})
	return f
}

func visibleFlags(l *flag.FlagSet) *flag.FlagSet {
	f := flag.NewFlagSet("visible", flag.ContinueOnError)
	l.VisitAll(func(fl *flag.Flag) {
		if fl.Name != "help" {
			f.AddFlag(fl)
		}
	})
	return f
}

func flagsUsages(f *flag.FlagSet) (string, error) {
	var b bytes.Buffer
	limit, err := term.GetWordWrapperLimit()
	if err != nil {
		limit = 0
	}
	p := templates.NewHelpFlagPrinter(&b, limit)
	f.VisitAll(func(fl *flag.Flag) {
		if !fl.Hidden {
			p.PrintHelpFlag(fl)
		}
	})
	return b.String(), nil
}

func usageLine(c *cobra.Command) string {
	u := c.UseLine()
	if c.HasFlags() && !strings.Contains(u, "[options]") {
		u += " [options]"
	}
	return u
}
