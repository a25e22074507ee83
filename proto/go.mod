module github.com/grpcchatter/grpcchatter/proto

go 1.26.0
