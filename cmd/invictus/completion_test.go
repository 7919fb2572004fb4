package main

import (
	"strings"
	"testing"
)

func TestCompletion(t *testing.T) {
	t.Parallel()
	for shell, want := range map[string]string{
		"bash":       "__start_invictus",
		"zsh":        "#compdef invictus",
		"fish":       "complete -c invictus",
		"powershell": "Register-ArgumentCompleter",
	} {
		code, out, errOut := runArgs(t, "completion", shell)
		if code != exitOK || !strings.Contains(out, want) {
			t.Errorf("completion %s: exit %d, no %q\n%s", shell, code, want, errOut)
		}
	}
	if code, _, _ := runArgs(t, "completion", "tcsh"); code != exitUsage {
		t.Errorf("completion tcsh: exit %d, want %d", code, exitUsage)
	}
	// Coded flags complete their codes.
	code, out, _ := runArgs(t, "__complete", "decline", "x", "--reason", "")
	if code != exitOK || !strings.Contains(out, "out_of_scope") || !strings.Contains(out, "conflict_of_interest") {
		t.Errorf("decline --reason completion: exit %d\n%s", code, out)
	}
	code, out, _ = runArgs(t, "__complete", "")
	if code != exitOK || !strings.Contains(out, "refer") || !strings.Contains(out, "handover") {
		t.Errorf("command completion: exit %d\n%s", code, out)
	}
}
