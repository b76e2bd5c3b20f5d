// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "reprise",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "reprise", targets: ["reprise"]),
        .library(name: "RepriseCore", targets: ["RepriseCore"]),
        .library(name: "RepriseServer", targets: ["RepriseServer"]),
        .library(name: "RepriseClient", targets: ["RepriseClient"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth.git", from: "2.5.0"),
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.7.1"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.39.0"),
        .package(url: "https://github.com/adam-fowler/compress-nio.git", from: "1.5.0"),
    ],
    targets: [
        // Domain: entities, validation, search grammar, wire JSON, store protocols. No I/O.
        .target(
            name: "RepriseCore",
            dependencies: [.product(name: "Logging", package: "swift-log")]
        ),
        // One portable SQL store over a tiny driver seam.
        .target(
            name: "RepriseSQL",
            dependencies: [
                "RepriseCore", .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"), .product(name: "CoreMetrics", package: "swift-metrics"),
            ]
        ),
        // The SQLite driver (GRDB, WAL, group commit).
        // glibc's allocator settings (malloc.h), for the server's start-up.
        .target(name: "CAllocator"),
        .target(
            name: "RepriseSQLite",
            dependencies: [
                "RepriseSQL", .product(name: "GRDB", package: "GRDB.swift"),
                // The C API, for reading result columns without GRDB's generic decoding (RepriseSQLite.rows).
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
            ]
        ),
        // The PostgreSQL driver (PostgresNIO): pooled connections on its own event loops, group commit
        // under one cluster-wide write lock.
        .target(
            name: "ReprisePostgres",
            dependencies: [
                "RepriseSQL", .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"), .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Artifact repositories: local files, and S3-compatible buckets (SigV4 signed by hand).
        .target(
            name: "RepriseArtifacts",
            dependencies: [
                "RepriseCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "_NIOFileSystem", package: "swift-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // OpenTelemetry's trace export (OTLP over HTTP, protobuf or JSON) read into spans. The
        // message types under Generated/ come from opentelemetry-proto by scripts/generate-otlp.sh.
        .target(
            name: "RepriseOTLP",
            dependencies: [
                "RepriseCore", .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                // gzip and deflate request bodies (OTel exporters compress by default), size-bounded.
                .product(name: "CompressNIO", package: "compress-nio"), .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        // The HTTP server (Hummingbird 2). Never imports a database driver.
        .target(
            name: "RepriseServer",
            dependencies: [
                "RepriseCore", "RepriseArtifacts", "RepriseOTLP",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ]
        ),
        // A client of the REST API for the CLI and tests.
        .target(
            name: "RepriseClient",
            dependencies: [
                "RepriseCore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        // Reproducibility on the client side: the run passport (code, data hashes, environment),
        // running a command under it, tolerances and fingerprints.
        .target(
            name: "RepriseRepro",
            dependencies: [
                "RepriseCore", "RepriseClient",
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // Bringing other stores in: MLflow's database (SQLite or PostgreSQL, read directly), its
        // artifacts, and the verification of what came across.
        .target(
            name: "RepriseImport",
            dependencies: [
                "RepriseCore", "RepriseSQL", "RepriseRepro", "RepriseClient", "RepriseArtifacts",
                .product(name: "Crypto", package: "swift-crypto"), .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "reprise",
            dependencies: [
                "CAllocator", "RepriseCore", "RepriseSQL", "RepriseSQLite", "ReprisePostgres", "RepriseArtifacts", "RepriseServer", "RepriseClient",
                "RepriseRepro", "RepriseImport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        // Shared test helpers: the store conformance suite every backend runs, temp dirs.
        .target(
            name: "RepriseTestSupport",
            dependencies: ["RepriseCore"]
        ),
        .testTarget(name: "RepriseCoreTests", dependencies: ["RepriseCore"]),
        .testTarget(name: "RepriseReproTests", dependencies: ["RepriseRepro", "RepriseCore", "RepriseClient", "RepriseTestSupport"]),
        .testTarget(
            name: "RepriseSQLiteTests",
            dependencies: ["RepriseCore", "RepriseSQL", "RepriseSQLite", "RepriseTestSupport"]
        ),
        .testTarget(
            name: "RepriseStoreTests",
            dependencies: [
                "RepriseCore", "RepriseSQL", "RepriseSQLite", "ReprisePostgres", "RepriseTestSupport",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "RepriseArtifactsTests",
            dependencies: ["RepriseArtifacts", "RepriseCore", .product(name: "NIOCore", package: "swift-nio")]
        ),
        .testTarget(
            name: "RepriseServerTests",
            dependencies: [
                "RepriseServer", "RepriseCore", "RepriseSQL", "RepriseSQLite", "RepriseArtifacts", "RepriseTestSupport",
                "RepriseClient", "RepriseOTLP", .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ]
        ),
    ]
)
