package main

import (
	"bytes"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/textproto"
	"strings"
)

// maxMIMEDepth bounds the nesting printStructure follows.
const maxMIMEDepth = 20

// printStructure prints the MIME structure of a message: one line per
// entity with its content type, file name and body size, nested parts
// indented.
func printStructure(w io.Writer, header [][2]string, body []byte) {
	h := textproto.MIMEHeader{}
	size := 0
	for _, f := range header {
		h.Add(textproto.CanonicalMIMEHeaderKey(f[0]), strings.TrimSpace(unfold(f[1])))
		size += len(f[0]) + 1 + len(f[1]) + 2
	}
	fmt.Fprintf(w, "  message          %d bytes (header %d, body %d), %d header fields\n", size+2+len(body), size, len(body), len(header))
	entity(w, h, body, 2)
}

func unfold(v string) string { return strings.NewReplacer("\r\n", "", "\n", "").Replace(v) }

// entity prints one entity and recurses into a multipart's parts.
func entity(w io.Writer, h textproto.MIMEHeader, body []byte, depth int) {
	ct := h.Get("Content-Type")
	if ct == "" {
		ct = "text/plain"
	}
	media, params, err := mime.ParseMediaType(ct)
	if err != nil {
		media = "unparsable Content-Type " + fmt.Sprintf("%q", ct)
	}
	name := ""
	if _, dp, err := mime.ParseMediaType(h.Get("Content-Disposition")); err == nil && dp["filename"] != "" {
		name = dp["filename"]
	} else if params["name"] != "" {
		name = params["name"]
	}
	label := media
	if name != "" {
		label += fmt.Sprintf(" %q", name)
	}
	if enc := h.Get("Content-Transfer-Encoding"); enc != "" {
		label += " (" + strings.ToLower(enc) + ")"
	}
	fmt.Fprintf(w, "%s%-*s %d bytes\n", strings.Repeat(" ", depth), max(1, 40-depth), label, len(body))
	if !strings.HasPrefix(media, "multipart/") || params["boundary"] == "" || depth/2 > maxMIMEDepth {
		return
	}
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	for {
		part, err := mr.NextRawPart()
		if err != nil {
			if err != io.EOF {
				fmt.Fprintf(w, "%s(unparsable: %v)\n", strings.Repeat(" ", depth+2), err)
			}
			return
		}
		b, err := io.ReadAll(part)
		if err != nil {
			fmt.Fprintf(w, "%s(unparsable: %v)\n", strings.Repeat(" ", depth+2), err)
			return
		}
		entity(w, part.Header, b, depth+2)
	}
}
