package ocp_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/opes-milter/opes-milter/ocp"
)

// A callout server that upper-cases the data of every application message,
// and a processor using it over loopback.
func Example() {
	const profile = "http://iana.org/opes/ocp/SMTP/receiver"
	srv := &ocp.Server{
		Negotiate: func(g *ocp.Group, offer []ocp.Feature) (ocp.Feature, bool) {
			return offer[0], offer[0].URI == profile
		},
		Handler: ocp.HandlerFunc(func(ctx context.Context, tx *ocp.ServerTx) {
			var data []byte
			for {
				m, err := tx.Recv(ctx)
				if err != nil {
					return
				}
				switch m.Name {
				case ocp.MsgDUM:
					data = append(data, m.Payload...)
				case ocp.MsgAME:
					tx.StartMessage()
					tx.Send(ctx, nil, []byte(strings.ToUpper(string(data))))
					tx.EndMessage(ocp.Result{})
					tx.End(context.Background(), ocp.Result{})
					return
				}
			}
		}),
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(ln)
	defer srv.Close()

	ctx := context.Background()
	cl, err := ocp.Dial(ctx, ln.Addr().String(), ocp.ClientConfig{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cl.Close(context.Background(), ocp.Result{})
	sg, selected, _ := cl.NewServiceGroup(ctx, []ocp.Service{{URI: "urn:example:upper"}},
		[]ocp.Feature{{URI: profile}})
	fmt.Println("profile:", selected.URI)

	tx, _ := cl.Start(ctx, sg)
	tx.StartMessage()
	tx.Send(ctx, []ocp.Param{ocp.NewParam("AM-Part", ocp.Atom("RAWDATA"))}, []byte("hello, "))
	tx.Send(ctx, []ocp.Param{ocp.NewParam("AM-Part", ocp.Atom("RAWDATA"))}, []byte("world"))
	tx.EndMessage(ocp.Result{})
	for {
		m, err := tx.Recv(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("%s %q\n", m.Name, m.Payload)
	}
	// Output:
	// profile: http://iana.org/opes/ocp/SMTP/receiver
	// AMS ""
	// DUM "HELLO, WORLD"
	// AME ""
	// TE ""
}

func ExampleAppendMessage() {
	m := &ocp.Message{
		Name:       ocp.MsgDUM,
		Anon:       []ocp.Value{ocp.Num(1), ocp.Num(19)},
		Named:      []ocp.Param{ocp.KeptParam(19, 18), ocp.NewParam("AM-Part", ocp.Atom("RCPT"))},
		Payload:    []byte("<paul@example.com>"),
		HasPayload: true,
	}
	fmt.Printf("%q\n", ocp.AppendMessage(nil, m))
	// Output:
	// "DUM 1 19\r\nKept: 19 18\r\nAM-Part: RCPT\r\n\r\n18:<paul@example.com>\r\n;\r\n"
}
