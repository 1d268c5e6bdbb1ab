package gotosocial

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/mail"
	"net/textproto"
	"strings"
	"sync"
	"time"
)

// Mail is one message received by the SMTP sink.
type Mail struct {
	From    string   // envelope sender (MAIL FROM)
	To      []string // envelope recipients (RCPT TO)
	Subject string
	Body    string // the body (GoToSocial sends text/plain, 8bit); line ends are "\n"
	Raw     []byte // the whole message, headers included, dot-unstuffed, "\n" line ends
}

// mailSink is a minimal SMTP server on loopback that stores every message it receives. It speaks
// just enough SMTP for Go's net/smtp client (what GoToSocial uses): EHLO/HELO, AUTH (any
// credentials are accepted), MAIL, RCPT, DATA, RSET, NOOP, QUIT. It advertises neither
// STARTTLS nor AUTH, so net/smtp sends in plain text without authentication.
type mailSink struct {
	ln net.Listener

	mu      sync.Mutex
	mails   []Mail
	changed chan struct{} // closed and replaced whenever a mail arrives
	conns   map[net.Conn]struct{}
	closed  bool
	wg      sync.WaitGroup
}

func newMailSink() (*mailSink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("smtp sink: %w", err)
	}
	s := &mailSink{ln: ln, changed: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.serve()
	return s, nil
}

// Addr is the sink's host:port.
func (s *mailSink) Addr() *net.TCPAddr { return s.ln.Addr().(*net.TCPAddr) }

func (s *mailSink) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			s.handle(c)
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}

// Close stops the listener and ends open sessions.
func (s *mailSink) Close() {
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.ln.Close()
	s.wg.Wait()
}

func (s *mailSink) handle(c net.Conn) {
	defer c.Close()
	tp := textproto.NewConn(c)
	reply := func(format string, args ...any) error {
		_ = c.SetWriteDeadline(time.Now().Add(30 * time.Second))
		return tp.PrintfLine(format, args...)
	}
	if reply("220 localhost ESMTP fediops test sink") != nil {
		return
	}
	var from string
	var to []string
	for {
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Minute))
		line, err := tp.ReadLine()
		if err != nil {
			return
		}
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO":
			err = reply("250-localhost greets %s\r\n250-8BITMIME\r\n250 SMTPUTF8", arg)
		case "HELO":
			err = reply("250 localhost")
		case "AUTH":
			// Only reached if credentials are configured; accept PLAIN with an initial response.
			err = reply("235 2.7.0 Authentication successful")
		case "MAIL":
			from, to = addrParam(arg, "FROM:"), nil
			err = reply("250 2.1.0 OK")
		case "RCPT":
			to = append(to, addrParam(arg, "TO:"))
			err = reply("250 2.1.5 OK")
		case "DATA":
			if len(to) == 0 {
				err = reply("503 5.5.1 RCPT first")
				break
			}
			if err = reply("354 End data with <CR><LF>.<CR><LF>"); err != nil {
				break
			}
			var data []byte
			data, err = tp.ReadDotBytes()
			if err != nil {
				return
			}
			s.add(parseMail(from, to, data))
			from, to = "", nil
			err = reply("250 2.0.0 OK: queued")
		case "RSET":
			from, to = "", nil
			err = reply("250 2.0.0 OK")
		case "NOOP":
			err = reply("250 2.0.0 OK")
		case "QUIT":
			_ = reply("221 2.0.0 Bye")
			return
		default:
			err = reply("502 5.5.2 command not recognized")
		}
		if err != nil {
			return
		}
	}
}

// addrParam extracts the address from "FROM:<a@b> BODY=8BITMIME".
func addrParam(arg, prefix string) string {
	arg = strings.TrimSpace(arg)
	if len(arg) >= len(prefix) && strings.EqualFold(arg[:len(prefix)], prefix) {
		arg = strings.TrimSpace(arg[len(prefix):])
	}
	if i := strings.IndexByte(arg, '>'); strings.HasPrefix(arg, "<") && i > 0 {
		return arg[1:i]
	}
	addr, _, _ := strings.Cut(arg, " ")
	return addr
}

func parseMail(from string, to []string, raw []byte) Mail {
	m := Mail{From: from, To: to, Raw: raw}
	msg, err := mail.ReadMessage(bufio.NewReader(bytes.NewReader(raw)))
	if err != nil {
		m.Body = string(raw)
		return m
	}
	m.Subject = msg.Header.Get("Subject")
	body, _ := io.ReadAll(msg.Body)
	m.Body = string(body)
	return m
}

func (s *mailSink) add(m Mail) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mails = append(s.mails, m)
	close(s.changed)
	s.changed = make(chan struct{})
}

// Mails returns a copy of the received messages, oldest first.
func (s *mailSink) Mails() []Mail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Mail(nil), s.mails...)
}

// Wait returns the first received message (oldest first) that match accepts, waiting for it
// until ctx is done.
func (s *mailSink) Wait(ctx context.Context, match func(Mail) bool) (Mail, error) {
	for {
		s.mu.Lock()
		mails, changed := s.mails, s.changed
		s.mu.Unlock()
		for _, m := range mails {
			if match(m) {
				return m, nil
			}
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return Mail{}, errors.Join(ctx.Err(), fmt.Errorf("%d mail(s) received, none matched", len(mails)))
		}
	}
}

// HasRecipient reports whether addr is among m's envelope recipients (case-insensitive).
func (m Mail) HasRecipient(addr string) bool {
	for _, to := range m.To {
		if strings.EqualFold(to, addr) {
			return true
		}
	}
	return false
}
