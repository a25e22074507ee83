module github.com/grpcchatter/grpcchatter/bench

go 1.26.0
