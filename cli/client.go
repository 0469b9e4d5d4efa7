package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/hotpath/hotpath/supervisor"
)

// client talks to a running supervisor over its control socket.
type client struct {
	sock string
	http *http.Client
}

func newClient(c *cli.Context) *client {
	sock := supervisor.SocketPath(global(c, "state-dir"))
	return &client{sock: sock, http: &http.Client{
		Timeout: 60 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}},
	}}
}

func (cl *client) do(method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "http://hotpath"+path, rd)
	if err != nil {
		return err
	}
	resp, err := cl.http.Do(req)
	if err != nil {
		return fmt.Errorf("supervisor not reachable at %s (is `hotpath supervisor run` running with this --state-dir?): %w", cl.sock, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode == http.StatusConflict {
		// The answer carries a result beside the error (an upgrade that
		// rolled back): decode both.
		if out != nil {
			json.Unmarshal(raw, out)
		}
		var e struct {
			Error string `json:"error"`
		}
		json.Unmarshal(raw, &e)
		return fmt.Errorf("%s", e.Error)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(raw, &e) == nil && e.Error != "" {
			return fmt.Errorf("%s", e.Error)
		}
		return fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	if out == nil {
		return nil
	}
	if r, ok := out.(*json.RawMessage); ok {
		*r = raw
		return nil
	}
	return json.Unmarshal(raw, out)
}

// invoke runs a plugin command through the supervisor.
func (cl *client) invoke(plugin, command string, args, out any) error {
	raw, err := json.Marshal(args)
	if err != nil {
		return err
	}
	return cl.do("POST", "/v1/plugins/"+plugin+"/invoke", supervisor.InvokeRequest{Command: command, Args: raw}, out)
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
