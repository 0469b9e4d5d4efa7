package demo

import (
	"context"
	"time"

	"github.com/hotpath/hotpath/lab"
)

// webStreams starts an echo server on web3 at port and n TCP streams from
// the client to it, for the sections that change maps under traffic. The
// caller stops the streams (stopStreams) when it is done.
func (d *Demo) webStreams(ctx context.Context, port string, n int) (string, []*lab.Stream, error) {
	web3 := d.lab.Pods["web3"]
	dst := web3.IP.String() + ":" + port
	if _, err := lab.EchoServer(web3.NS, dst); err != nil {
		return "", nil, err
	}
	var streams []*lab.Stream
	for i := 0; i < n; i++ {
		s, err := lab.StartStream(ctx, d.lab.Pods["client"].NS, dst, 512, 20*time.Millisecond)
		if err != nil {
			stopStreams(streams)
			return "", nil, err
		}
		streams = append(streams, s)
	}
	return dst, streams, nil
}

func stopStreams(streams []*lab.Stream) {
	for _, s := range streams {
		s.Stop()
	}
}

// brokenStreams counts the streams that saw an error so far.
func brokenStreams(streams []*lab.Stream) int {
	broken := 0
	for _, s := range streams {
		if s.Stats().Err != nil {
			broken++
		}
	}
	return broken
}
