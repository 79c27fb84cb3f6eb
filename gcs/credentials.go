package gcs

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/litestream-go/litestream/internal/storeclient"
)

// errBadCredentials is wrapped by the error of a client whose credentials
// were found but cannot be used: a GOOGLE_APPLICATION_CREDENTIALS file that
// is missing, unreadable or not a credentials file.
var errBadCredentials = errors.New("GCS credentials cannot be used")

// credentialsFile is the part of a Google credentials JSON file that may
// be named in messages; the rest (a private key) never is.
type credentialsFile struct {
	Type        string `json:"type"`
	ClientEmail string `json:"client_email"`
}

// checkCredentialsFile tells, before the client reads it, what is wrong
// with the file GOOGLE_APPLICATION_CREDENTIALS names, in one line that
// names the file and never its content. With the emulator in use, or the
// variable unset, there is nothing to check.
func checkCredentialsFile() error {
	p := os.Getenv("GOOGLE_APPLICATION_CREDENTIALS")
	if p == "" || os.Getenv("STORAGE_EMULATOR_HOST") != "" {
		return nil
	}
	const fix = "point it at a service account key file (JSON), or unset it to use application default credentials"
	b, err := os.ReadFile(p)
	if err != nil {
		why := "cannot be read"
		switch {
		case errors.Is(err, fs.ErrNotExist):
			why = "does not exist"
		case errors.Is(err, fs.ErrPermission):
			why = "this user may not read"
		}
		return fmt.Errorf("%w: GOOGLE_APPLICATION_CREDENTIALS names %s, which %s: %s", errBadCredentials, p, why, fix)
	}
	var f credentialsFile
	if err := json.Unmarshal(b, &f); err != nil || f.Type == "" {
		why := `it has no "type" field`
		var se *json.SyntaxError
		switch {
		case errors.As(err, &se):
			why = fmt.Sprintf("not valid JSON at byte %d", se.Offset)
		case err != nil:
			why = "not a JSON object"
		}
		return fmt.Errorf("%w: GOOGLE_APPLICATION_CREDENTIALS file %s is not a Google credentials file (%s): %s", errBadCredentials, p, why, fix)
	}
	return nil
}

// credentialsSource names the credentials in use, for an access-denied
// message: the service account's email and the file it came from, or the
// application default credentials.
func credentialsSource() string {
	if os.Getenv("STORAGE_EMULATOR_HOST") != "" {
		return "no credentials (the emulator takes none)"
	}
	p := os.Getenv("GOOGLE_APPLICATION_CREDENTIALS")
	if p == "" {
		return "the application default credentials"
	}
	var f credentialsFile
	if b, err := os.ReadFile(p); err == nil && json.Unmarshal(b, &f) == nil && f.ClientEmail != "" {
		return fmt.Sprintf("service account %s (GOOGLE_APPLICATION_CREDENTIALS=%s)", f.ClientEmail, p)
	}
	return "the credentials of GOOGLE_APPLICATION_CREDENTIALS=" + p
}

// clientError puts an error of storage.NewClient, which reads the
// credentials, in our words.
func clientError(err error) error {
	if strings.Contains(err.Error(), "could not find default credentials") {
		return fmt.Errorf("%w: %s", ErrNoCredentials, noCredentialsHint)
	}
	return fmt.Errorf("%w: %s: %v", errBadCredentials, credentialsSource(), storeclient.Innermost(err))
}
