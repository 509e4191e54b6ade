// A stateful line server that keeps its clients' connections and its state across restarts
// with the file-descriptor store (reentr --fd-store, as under systemd), standard library only.
//
// Each line a client sends gets "VERSION COUNT PID", where COUNT is the number of answers
// given since the first start: the counter lives in a memfd that the server stores once, so
// every start finds it. At SIGTERM it stops accepting and reading, stores every open
// connection (FDSTOREREMOVE=1 of the old set first), and exits; bytes a client sends meanwhile
// wait in the kernel for the next start. A connection it ends (the line "quit", or the client
// gone) it shuts down before closing it, so that the store lets its copy go.
package main

import (
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

const version = "v1"

const batch = 253 // SCM_MAX_FD: the most descriptors one message carries

var (
	mu       sync.Mutex
	conns    = map[net.Conn]bool{}
	stopping bool
	readers  sync.WaitGroup
	state    int
)

func notify(text string, fds []int) {
	addr := &net.UnixAddr{Name: os.Getenv("NOTIFY_SOCKET"), Net: "unixgram"}
	// Not connected: Go refuses WriteMsgUnix on a connected datagram socket.
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Net: "unixgram"})
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	for at := 0; at == 0 || at < len(fds); at += batch {
		end := at + batch
		if end > len(fds) {
			end = len(fds)
		}
		var rights []byte
		if end > at {
			rights = syscall.UnixRights(fds[at:end]...)
		}
		if _, _, err := conn.WriteMsgUnix([]byte(text), rights, addr); err != nil {
			panic(err)
		}
	}
}

// memfdCreate is memfd_create(2)'s number, which the frozen syscall package does not name.
var memfdCreate = map[string]uintptr{"amd64": 319, "arm64": 279, "386": 356, "riscv64": 279}

func memfd(name string) int {
	text, _ := syscall.BytePtrFromString(name)
	fd, _, errno := syscall.Syscall(memfdCreate[runtime.GOARCH], uintptr(unsafe.Pointer(text)), 1, 0)
	if errno != 0 {
		panic(errno)
	}
	return int(fd)
}

func count() uint64 {
	buf := make([]byte, 8)
	if _, err := syscall.Pread(state, buf, 0); err != nil {
		panic(err)
	}
	next := binary.LittleEndian.Uint64(buf) + 1
	binary.LittleEndian.PutUint64(buf, next)
	if _, err := syscall.Pwrite(state, buf, 0); err != nil {
		panic(err)
	}
	return next
}

// end ends a connection: shut down, so that the store's copy hangs up and is dropped (a close
// alone would leave it open), then closed. With mu held.
func end(c net.Conn) {
	delete(conns, c)
	if tcp, ok := c.(*net.TCPConn); ok {
		tcp.CloseRead()
		tcp.CloseWrite()
	}
	c.Close()
}

func serve(c net.Conn) {
	defer readers.Done()
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		mu.Lock()
		if err != nil {
			if !stopping { // the client is gone
				end(c)
			}
			mu.Unlock()
			return
		}
		for _, line := range strings.SplitAfter(string(buf[:n]), "\n") {
			if line == "quit\n" {
				fmt.Fprint(c, "bye\n")
				end(c)
				mu.Unlock()
				return
			}
			if strings.HasSuffix(line, "\n") {
				fmt.Fprintf(c, "%s %d %d\n", version, count(), os.Getpid())
			}
		}
		mu.Unlock()
	}
}

func add(c net.Conn) {
	mu.Lock()
	defer mu.Unlock()
	conns[c] = true
	readers.Add(1)
	go serve(c)
}

func main() {
	var listener net.Listener
	state = -1
	if os.Getenv("LISTEN_PID") == strconv.Itoa(os.Getpid()) {
		n, _ := strconv.Atoi(os.Getenv("LISTEN_FDS"))
		names := strings.Split(os.Getenv("LISTEN_FDNAMES"), ":")
		for i := 0; i < n; i++ {
			fd := 3 + i
			syscall.CloseOnExec(fd)
			name := names[i]
			switch name {
			case "state":
				state = fd
			case "conn":
				file := os.NewFile(uintptr(fd), name)
				c, err := net.FileConn(file)
				if err != nil {
					panic(err)
				}
				file.Close()
				add(c)
			default:
				file := os.NewFile(uintptr(fd), name)
				l, err := net.FileListener(file)
				if err != nil {
					panic(err)
				}
				file.Close()
				listener = l
			}
		}
	}
	if listener == nil {
		panic("run with --socket")
	}
	if state < 0 {
		state = memfd("counter")
		syscall.Pwrite(state, make([]byte, 8), 0)
		notify("FDSTORE=1\nFDNAME=state", []int{state})
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM)
	accepted := make(chan bool)
	go func() {
		for {
			c, err := listener.Accept()
			if err != nil {
				close(accepted)
				return
			}
			add(c)
		}
	}()
	notify("READY=1", nil)
	fmt.Printf("serving %s with %d kept connections\n", version, len(conns))
	<-stop
	listener.Close() // our copy only: the socket stays open in reentr for the next start
	<-accepted
	mu.Lock()
	stopping = true
	for c := range conns {
		c.SetReadDeadline(time.Now())
	}
	mu.Unlock()
	readers.Wait()
	var fds []int
	for c := range conns {
		file, err := c.(*net.TCPConn).File()
		if err != nil {
			panic(err)
		}
		fds = append(fds, int(file.Fd()))
	}
	notify("FDSTOREREMOVE=1\nFDNAME=conn", nil)
	if len(fds) > 0 {
		notify("FDSTORE=1\nFDNAME=conn", fds)
	}
	os.Exit(0)
}
