module github.com/opes-milter/opes-milter

go 1.26.8

require (
	github.com/BurntSushi/toml v1.6.0
	github.com/d--j/go-milter v0.10.1
	github.com/emersion/go-message v0.18.2
	go.uber.org/goleak v1.3.0
	golang.org/x/text v0.28.0
)
