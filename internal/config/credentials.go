package config

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/atlasgo/atlas/internal/atomicfile"
)

// CredentialsFile holds API tokens stored by `foundations login`, readable by the user only.
const CredentialsFile = "credentials.yaml"

// Credentials maps scheduler URLs to tokens. Default is used for any URL not listed (Atlas
// stored a single `default` token).
type Credentials struct {
	Default struct {
		Token string `yaml:"token,omitempty"`
	} `yaml:"default,omitempty"`
	Servers map[string]struct {
		Token string `yaml:"token"`
		User  string `yaml:"user,omitempty"`
	} `yaml:"servers,omitempty"`
}

// LoadCredentials reads $FOUNDATIONS_HOME/credentials.yaml; a missing file is empty.
func LoadCredentials() (*Credentials, error) {
	c := &Credentials{}
	data, err := os.ReadFile(filepath.Join(Home(), CredentialsFile))
	if os.IsNotExist(err) {
		return c, nil
	}
	if err != nil {
		return nil, err
	}
	if err := yaml.Unmarshal(data, c); err != nil {
		path := filepath.Join(Home(), CredentialsFile)
		var te *yaml.TypeError
		if errors.As(err, &te) && len(te.Errors) > 0 {
			// "line 2: cannot unmarshal !!seq into string", one per problem: the first will do.
			e := syntaxError(path, data, errors.New(te.Errors[0]))
			e.Msg = strings.TrimPrefix(e.Msg, "invalid YAML: ")
			return nil, e
		}
		return nil, syntaxError(path, data, err)
	}
	return c, nil
}

// CredentialFor returns the stored token for a scheduler URL, or "".
func CredentialFor(url string) string {
	c, err := LoadCredentials()
	if err != nil {
		return ""
	}
	if s, ok := c.Servers[strings.TrimRight(url, "/")]; ok {
		return s.Token
	}
	return c.Default.Token
}

// SaveCredential stores a token for a URL, keeping the file private to the user.
func SaveCredential(url, user, token string) (string, error) {
	c, err := LoadCredentials()
	if err != nil {
		return "", err
	}
	if c.Servers == nil {
		c.Servers = map[string]struct {
			Token string `yaml:"token"`
			User  string `yaml:"user,omitempty"`
		}{}
	}
	c.Servers[strings.TrimRight(url, "/")] = struct {
		Token string `yaml:"token"`
		User  string `yaml:"user,omitempty"`
	}{Token: token, User: user}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(c); err != nil {
		return "", err
	}
	data := buf.Bytes()
	if err := os.MkdirAll(Home(), 0o700); err != nil {
		return "", err
	}
	path := filepath.Join(Home(), CredentialsFile)
	return path, atomicfile.Write(path, data, 0o600, true)
}
