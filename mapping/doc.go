// Package mapping is the configuration of both daemons, opes-milter and
// opes-callout: one TOML file (or two, one per daemon) decoded with
// BurntSushi/toml, checked strictly and compiled into an immutable Config.
//
// The file has two sides. The opes-milter side is made of the [milter],
// [trace] and [bypass] tables, the callout server sets ([servers.NAME]),
// the OPES services ([services.NAME]) and chains ([chains.NAME]), the
// routes ([[routes]]) and the skip rules ([[skip]]). The opes-callout side
// is the [callout] table. Either side may be absent, so each daemon can
// read the same file, or a file of its own; the schema is one, so the
// unknown-key check never trips over the other daemon's keys.
//
// Every problem is reported as an *Error naming the file, the line and the
// key ("contrib/opes-milter.toml:42: routes[0].adaptiv: unknown key");
// LoadFile joins all of them, sorted by line. contrib/opes-milter.toml
// documents every key.
package mapping
