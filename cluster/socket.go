package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/hotpath/hotpath/core/plugin"
)

// SocketDatapath reaches a supervisor through its control socket, the path
// `hotpath plugin invoke` takes, for a source running outside the
// supervisor process.
type SocketDatapath struct {
	http *http.Client
}

// NewSocketDatapath talks to the supervisor listening on sock.
func NewSocketDatapath(sock string) *SocketDatapath {
	return &SocketDatapath{http: &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}}
}

func (s *SocketDatapath) do(ctx context.Context, method, path string, body any) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://hotpath"+path, rd)
	if err != nil {
		return nil, err
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("supervisor: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(raw, &e) == nil && e.Error != "" {
			return nil, fmt.Errorf("%s", e.Error)
		}
		return nil, fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	return raw, nil
}

// Invoke runs a plugin command.
func (s *SocketDatapath) Invoke(ctx context.Context, name string, req *plugin.InvokeRequest) (json.RawMessage, error) {
	return s.do(ctx, "POST", "/v1/plugins/"+name+"/invoke", req)
}

// PluginNames lists the supervisor's plugins (none when it does not answer).
func (s *SocketDatapath) PluginNames() []string {
	raw, err := s.do(context.Background(), "GET", "/v1/plugins", nil)
	if err != nil {
		return nil
	}
	var ps []struct {
		Name string `json:"name"`
	}
	json.Unmarshal(raw, &ps)
	var out []string
	for _, p := range ps {
		out = append(out, p.Name)
	}
	return out
}
