# Build: docker build -t litestream .
# Run:   docker run -v /data:/data -v /etc/litestream.yml:/etc/litestream.yml litestream replicate
FROM golang:1.26 AS build
WORKDIR /src
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.Version=${VERSION}" -o /litestream ./cmd/litestream

FROM gcr.io/distroless/static-debian12
COPY --from=build /litestream /usr/local/bin/litestream
ENTRYPOINT ["/usr/local/bin/litestream"]
CMD ["replicate"]
