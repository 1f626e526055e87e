package server

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/atlasgo/atlas/internal/api"
	"github.com/atlasgo/atlas/internal/config"
	"github.com/atlasgo/atlas/internal/store"
)

// openStore opens the server's database (server.config.yaml's database:), for the admin
// commands. They work whether the server runs or not.
func openStore(ctx context.Context) (store.Store, error) {
	cfg := config.DefaultServer()
	if _, err := config.LoadServer(&cfg); err != nil {
		return nil, err
	}
	return openDatabase(ctx, cfg.Database, paths{home: cfg.Home})
}

func userCommand(stdout io.Writer) *cobra.Command {
	user := &cobra.Command{Use: "user", Short: "Manage the users who may use the server with --auth"}
	var admin bool
	add := &cobra.Command{
		Use:   "add NAME",
		Short: "Add a user (then give them a token with `atlas-server token create NAME`)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := strings.TrimSpace(args[0])
			if name == "" || strings.ContainsAny(name, " \t\n/") {
				return fmt.Errorf("invalid user name %q", args[0])
			}
			st, err := openStore(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			if _, err := st.UserAdd(cmd.Context(), name, admin); err != nil {
				return err
			}
			role := "user"
			if admin {
				role = "admin"
			}
			fmt.Fprintf(stdout, "Added %s %s. Create their token with: atlas-server token create %s\n", role, name, name)
			return nil
		},
	}
	add.Flags().BoolVar(&admin, "admin", false, "may stop and delete anyone's jobs and mount any volume")
	list := &cobra.Command{
		Use:   "list",
		Short: "List users",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := openStore(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			users, err := st.UserList(cmd.Context())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tADMIN\tTOKENS\tCREATED")
			for _, u := range users {
				fmt.Fprintf(tw, "%s\t%v\t%d\t%s\n", u.Name, u.Admin, u.Tokens, u.CreatedAt.Format("2006-01-02 15:04"))
			}
			return tw.Flush()
		},
	}
	user.AddCommand(add, list)
	return user
}

func tokenCommand(stdout io.Writer) *cobra.Command {
	token := &cobra.Command{Use: "token", Short: "Manage API tokens"}
	var label string
	create := &cobra.Command{
		Use:   "create USER",
		Short: "Create an API token for a user and print it (it is shown only once)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := openStore(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			tok := api.NewToken()
			t, err := st.TokenAdd(cmd.Context(), args[0], api.HashToken(tok), label)
			if err != nil {
				return err
			}
			fmt.Fprintln(stdout, tok)
			fmt.Fprintf(stdout, "Token %d for %s. It is not stored and cannot be shown again; use it with `foundations login <url> --token ...` or FOUNDATIONS_TOKEN.\n", t.ID, args[0])
			return nil
		},
	}
	create.Flags().StringVar(&label, "label", "", "what the token is for, e.g. a machine name")
	list := &cobra.Command{
		Use:   "list [USER]",
		Short: "List tokens (not their secrets)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := openStore(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			user := ""
			if len(args) == 1 {
				user = args[0]
			}
			toks, err := st.TokenList(cmd.Context(), user)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tUSER\tLABEL\tCREATED\tLAST USED")
			for _, t := range toks {
				used := "never"
				if t.LastUsedAt != nil {
					used = t.LastUsedAt.Format("2006-01-02 15:04")
				}
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", t.ID, t.User, t.Label, t.CreatedAt.Format("2006-01-02 15:04"), used)
			}
			return tw.Flush()
		},
	}
	revoke := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a token; requests with it are refused from then on",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil {
				return fmt.Errorf("invalid token id %q (see `atlas-server token list`)", args[0])
			}
			st, err := openStore(cmd.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			if err := st.TokenRevoke(cmd.Context(), id); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "Revoked token %d.\n", id)
			return nil
		},
	}
	token.AddCommand(create, list, revoke)
	return token
}
