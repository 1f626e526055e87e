// Running Slurm's commands, as the server or as a job's account.

package slurm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"syscall"

	"github.com/atlasgo/atlas/internal/atlas"
)

// Command is one run of one of Slurm's commands.
type Command struct {
	Name  string
	Args  []string
	Stdin string
	// As runs the command as another account (the server must be root); nil: as the server.
	As *account
	// Env is the command's whole environment (nil: the server's).
	Env []string
}

// Runner runs a command and returns its standard output; a failure's error holds what the
// command said on its standard error, on one line.
type Runner func(ctx context.Context, c Command) (string, error)

// account is a local account, as sbatch is run as it.
type account struct {
	Name     string
	UID, GID int
	Groups   []uint32
	Home     string
}

func lookupAccount(name string) (*account, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("no account %s on this machine: %w", name, err)
	}
	return accountOf(u)
}

func accountOf(u *user.User) (*account, error) {
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("account %s: uid %s, gid %s are not numbers", u.Username, u.Uid, u.Gid)
	}
	a := &account{Name: u.Username, UID: uid, GID: gid, Home: u.HomeDir}
	if ids, err := u.GroupIds(); err == nil {
		for _, g := range ids {
			if n, err := strconv.ParseUint(g, 10, 32); err == nil {
				a.Groups = append(a.Groups, uint32(n))
			}
		}
	}
	return a, nil
}

// Exec runs the command for real.
func Exec(ctx context.Context, c Command) (string, error) {
	cmd := exec.CommandContext(ctx, c.Name, c.Args...)
	cmd.Env = c.Env
	cmd.Dir = "/" // the server's working directory may be closed to a job's account
	if c.Stdin != "" {
		cmd.Stdin = strings.NewReader(c.Stdin)
	}
	if c.As != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(c.As.UID), Gid: uint32(c.As.GID),
			Groups: c.As.Groups}}
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		var exit *exec.ExitError
		switch {
		case errors.As(err, &exit) && msg != "":
			return stdout.String(), errors.New(said(c.Name, msg))
		case errors.Is(err, exec.ErrNotFound):
			return stdout.String(), fmt.Errorf("%s is not on the server's PATH (%s): is this a Slurm login node?", c.Name, os.Getenv("PATH"))
		}
		return stdout.String(), fmt.Errorf("%s: %s", c.Name, atlas.OneLine(err))
	}
	return stdout.String(), nil
}

// said is what a command said on its standard error, on one line: "sbatch: error: A" and
// "sbatch: error: B" are "sbatch: A; B".
func said(name, stderr string) string {
	var parts []string
	for _, line := range strings.Split(stderr, "\n") {
		line = strings.TrimSpace(line)
		line = strings.TrimPrefix(strings.TrimPrefix(line, name+": "), "error: ")
		if line != "" {
			parts = append(parts, line)
		}
	}
	return atlas.OneLine(errors.New(name + ": " + strings.Join(parts, "; ")))
}
