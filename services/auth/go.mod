module github.com/grpcchatter/grpcchatter/services/auth

go 1.26.0
