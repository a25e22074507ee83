module github.com/grpcchatter/grpcchatter/services/chat

go 1.26.0
