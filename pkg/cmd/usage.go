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

func usageFuncs(root *cobra.Command, filters []string, groups templates.CommandGroups) template.FuncMap {
	isRoot := func(c *cobra.Command) bool { return c == root || !c.HasParent() }
	parents := func(c *cobra.Command) []*cobra.Command {
		out := []*cobra.Command{c}
		for cur := c; !isRoot(cur); {
			cur = cur.Parent()
			out = append(out, cur)
		}
		return out
	}
	filter := func(cmds []*cobra.Command, names ...string) []*cobra.Command {
		var out []*cobra.Command
		for _, c := range cmds {
			if c.Hidden || slices.Contains(names, c.Name()) {
				continue
			}
			out = append(out, c)
		}
		return out
	}
	return template.FuncMap{
		"trim":      strings.TrimSpace,
		"trimRight": func(s string) string { return strings.TrimRightFunc(s, unicode.IsSpace) },
		"gt":        cobra.Gt,
		"eq":        cobra.Eq,
		"isRootCmd": isRoot,
		"rootCmd":   func(*cobra.Command) string { return root.CommandPath() },
		"flagsNotIntersected": func(l, r *flag.FlagSet) *flag.FlagSet {
			f := flag.NewFlagSet("notIntersected", flag.ContinueOnError)
			l.VisitAll(func(fl *flag.Flag) {
				if r.Lookup(fl.Name) == nil {
					f.AddFlag(fl)
				}
			})
			return f
		},
		"visibleFlags": func(l *flag.FlagSet) *flag.FlagSet {
			f := flag.NewFlagSet("visible", flag.ContinueOnError)
			l.VisitAll(func(fl *flag.Flag) {
				if fl.Name != "help" {
					f.AddFlag(fl)
				}
			})
			return f
		},
		"exposed": func(*cobra.Command) *flag.FlagSet { return flag.NewFlagSet("exposed", flag.ContinueOnError) },
		"flagsUsages": func(f *flag.FlagSet) (string, error) {
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
		},
		"optionsCmdFor": func(c *cobra.Command) string {
			if !c.Runnable() {
				return ""
			}
			ps := parents(c)
			for i := len(ps) - 1; i >= 0; i-- {
				if _, _, err := ps[i].Find([]string{"options"}); err == nil {
					return ps[i].CommandPath() + " options"
				}
			}
			return ""
		},
		"usageLine": func(c *cobra.Command) string {
			u := c.UseLine()
			if c.HasFlags() && !strings.Contains(u, "[options]") {
				u += " [options]"
			}
			return u
		},
		"reverseParentsNames": func(c *cobra.Command) []string {
			ps := parents(c)
			out := make([]string, 0, len(ps))
			for i := len(ps) - 1; i >= 0; i-- {
				out = append(out, ps[i].Name())
			}
			return out
		},
		"cmdGroupsString": func(c *cobra.Command) string {
			gs := templates.CommandGroups{{Message: "Available Commands:", Commands: filter(c.Commands(), "options")}}
			if len(groups) > 0 && c == root {
				gs = templates.AddAdditionalCommands(groups, "Other Commands:", filter(c.Commands(), filters...))
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
		},
	}
}
