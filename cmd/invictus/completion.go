package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

func newCompletionCmd(out io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "completion bash|zsh|fish|powershell",
		Short: "Print the shell completion script for invictus",
		Long: "Completion prints a script that makes your shell complete invictus commands,\n" +
			"flags and coded values (decline --reason, complete --outcome, inbox --type...).\n" +
			"Load it once per session, or install it as your shell expects.",
		Example: "  source <(invictus completion bash)\n" +
			"  invictus completion bash > /etc/bash_completion.d/invictus\n" +
			"  invictus completion zsh > \"${fpath[1]}/_invictus\"\n" +
			"  invictus completion fish > ~/.config/fish/completions/invictus.fish",
		ValidArgs: []string{"bash", "zsh", "fish", "powershell"},
		Args:      cobra.MatchAll(cobra.ExactArgs(1), cobra.OnlyValidArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			root := cmd.Root()
			switch args[0] {
			case "bash":
				return root.GenBashCompletionV2(out, true)
			case "zsh":
				return root.GenZshCompletion(out)
			case "fish":
				return root.GenFishCompletion(out, true)
			case "powershell":
				return root.GenPowerShellCompletionWithDesc(out)
			}
			return usageError{fmt.Errorf("unknown shell %q", args[0])}
		},
	}
	return cmd
}
