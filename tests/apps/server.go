// The Go server of the README and of the Go tests and benchmark: it serves on the socket
// reentr holds (fd 3, LISTEN_FDS) or binds PORT itself, answers "VERSION PID", and finishes
// the requests it has begun when it gets SIGTERM.
package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
)

const version = "v0"

func listen() (net.Listener, error) {
	if os.Getenv("LISTEN_PID") == strconv.Itoa(os.Getpid()) && os.Getenv("LISTEN_FDS") != "" {
		return net.FileListener(os.NewFile(3, "reentr"))
	}
	return net.Listen("tcp", "127.0.0.1:"+os.Getenv("PORT"))
}

func main() {
	ln, err := listen()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	server := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %d\n", version, os.Getpid())
	})}
	stopping, _ := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	done := make(chan struct{})
	go func() {
		<-stopping.Done()
		server.Shutdown(context.Background())
		close(done)
	}()
	fmt.Println("listening")
	if err := server.Serve(ln); err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	<-done
}
