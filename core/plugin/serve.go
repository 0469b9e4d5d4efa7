package plugin

import (
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"sync"
	"syscall"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
)

// LogEnv names the file a plugin logs to. The host sets it so that a plugin's
// logs outlive the host: the plugin's stderr is a pipe to the host, and after
// the host dies whatever is written there is lost.
const LogEnv = "HOTPATH_PLUGIN_LOG"

// LogLevelEnv optionally sets the plugin's log level (trace, debug, info, ...).
const LogLevelEnv = "HOTPATH_PLUGIN_LOG_LEVEL"

var (
	logOnce sync.Once
	logger  hclog.Logger
	logFile *os.File
)

// Logger is the plugin's logger: JSON to $HOTPATH_PLUGIN_LOG, or to stderr,
// where the host's go-plugin client parses the JSON and re-logs each line
// under the plugin's name.
func Logger() hclog.Logger {
	logOnce.Do(func() {
		// os.Stderr is captured here, before goplugin.Serve swaps it for a
		// pipe into its stdio stream: that stream blocks once nobody drains
		// it (host dead, not yet re-adopted), the real fd 2 does not.
		out := os.Stderr
		var openErr error
		if path := os.Getenv(LogEnv); path != "" {
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
			if err != nil {
				openErr = err
			} else {
				out, logFile = f, f
			}
		}
		logger = hclog.New(&hclog.LoggerOptions{
			Name:       filepath.Base(os.Args[0]),
			Level:      hclog.LevelFromString(os.Getenv(LogLevelEnv)),
			Output:     out,
			JSONFormat: true,
		})
		if openErr != nil {
			logger.Warn("open log file, logging to stderr", "error", openErr)
		}
	})
	return logger
}

// Serve runs impl as a hotpath plugin; call it from the plugin's main. It
// returns when the host shuts the plugin down.
func Serve(impl Datapath) {
	// A plugin must survive its host: once the host is gone, fd 1 and 2 are
	// pipes without a reader and Go kills a process that writes to such a
	// pipe on fd 1 or 2 with SIGPIPE unless SIGPIPE is ignored.
	signal.Ignore(syscall.SIGPIPE)

	log := Logger()
	if logFile != nil {
		// Panics go to fd 2 (the host's pipe, maybe dead): keep a copy in
		// the log file that outlives the host.
		if err := debug.SetCrashOutput(logFile, debug.CrashOptions{}); err != nil {
			log.Warn("set crash output", "error", err)
		}
	}
	if impl == nil {
		fmt.Fprintln(os.Stderr, "plugin: Serve called with a nil Datapath")
		os.Exit(1)
	}
	hs := Handshake
	hs.ProtocolVersion = servedMajor()
	goplugin.Serve(&goplugin.ServeConfig{
		HandshakeConfig: hs,
		Plugins:         goplugin.PluginSet{Name: &GRPC{Impl: impl}},
		GRPCServer:      goplugin.DefaultGRPCServer,
		Logger:          log,
	})
}
