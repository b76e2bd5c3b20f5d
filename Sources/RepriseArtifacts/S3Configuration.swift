import Foundation
import RepriseCore

/// `s3://bucket/prefix`: a bucket and the key prefix artifacts live under.
public struct S3Location: Sendable, Equatable, CustomStringConvertible {
    /// The bucket name.
    public var bucket: String
    /// The key prefix, without leading or trailing `/` (empty: the whole bucket).
    public var prefix: String

    /// Parses `s3://bucket[/prefix]`.
    /// - Throws: `RepriseError.invalid` naming what is wrong (scheme, bucket name, path).
    public init(uri: String) throws {
        guard uri.hasPrefix("s3://") else { throw RepriseError.invalid("'\(uri)' is not an s3:// URI.") }
        let rest = uri.dropFirst("s3://".count)
        let bucket = rest[..<(Validation.firstSlash(in: rest) ?? rest.endIndex)]
        try Self.checkBucket(String(bucket), uri: uri)
        let prefix = Validation.trimmingSlashes(rest[bucket.endIndex...])
        // The prefix is a key path; the same rules as artifact paths keep it unambiguous (no `..`,
        // `.`, empty segments or control characters).
        if !prefix.isEmpty {
            let comps: [String]
            do { comps = try Validation.artifactPathComponents(prefix) } catch {
                throw RepriseError.invalid("Invalid key prefix in '\(uri)': use plain path segments (no '.', '..' or control characters).")
            }
            guard comps.joined(separator: "/") == prefix else {
                throw RepriseError.invalid("Invalid key prefix in '\(uri)': use plain path segments (no '.', '..' or empty segments).")
            }
        }
        self.bucket = String(bucket)
        self.prefix = prefix
    }

    /// - Parameters:
    ///   - bucket: a valid bucket name.
    ///   - prefix: the key prefix (no leading or trailing `/`).
    public init(bucket: String, prefix: String) {
        self.bucket = bucket
        self.prefix = prefix
    }

    /// Whether `other` is this location or lies under it.
    public func contains(_ other: S3Location) -> Bool {
        other.bucket == bucket && (prefix.isEmpty || other.prefix == prefix || other.prefix.hasPrefix(prefix + "/"))
    }

    /// `s3://bucket/prefix`.
    public var description: String { prefix.isEmpty ? "s3://\(bucket)" : "s3://\(bucket)/\(prefix)" }

    /// S3's bucket naming rules: 3–63 characters of lower-case letters, digits, `.` and `-`,
    /// starting and ending with a letter or digit.
    static func checkBucket(_ name: String, uri: String) throws {
        let ok =
            (3...63).contains(name.utf8.count)
            && name.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2E || $0 == 0x2D }
            && name.first.map { $0.isLetter || $0.isNumber } == true && name.last.map { $0.isLetter || $0.isNumber } == true
        guard ok else {
            throw RepriseError.invalid(
                "Invalid bucket name '\(name)' in '\(uri)': S3 bucket names are 3-63 lower-case letters, digits, '.' and '-'.")
        }
    }
}

/// How to reach S3 and sign for it, read from the environment as boto3 and MLflow read it.
public struct S3Settings: Sendable {
    /// `http` or `https`.
    public var scheme: String
    /// The endpoint host, without the bucket.
    public var host: String
    /// An explicit port, or nil for the scheme's default.
    public var port: Int?
    /// Path-style addressing (`host/bucket/key`, used with `MLFLOW_S3_ENDPOINT_URL`, as MinIO and
    /// moto expect) rather than virtual-hosted (`bucket.host/key`).
    public var pathStyle: Bool
    public var region: String
    public var credentials: AWSCredentials
    /// The size of each multipart-upload part; a body smaller than this goes up in one PUT.
    public var partSize: Int = S3Settings.defaultPartSize
    /// How long one request may take until its answer's head arrives (an upload's body included).
    public var requestTimeoutSeconds: Int64 = 300
    /// How long a connection may stay silent while an answer is being read.
    public var readTimeoutSeconds: Int64 = 60
    /// How long connecting may take.
    public var connectTimeoutSeconds: Int64 = 10

    public static let defaultPartSize = 8 * 1024 * 1024
    /// S3's smallest part (all but the last).
    public static let minimumPartSize = 5 * 1024 * 1024
    /// S3's largest part.
    public static let maximumPartSize = 5 * 1024 * 1024 * 1024

    /// - Parameters:
    ///   - endpoint: `http(s)://host[:port]` of an S3-compatible service; nil for AWS.
    ///   - region: the signing region.
    ///   - credentials: the keys.
    /// - Throws: `RepriseError.invalid` for an endpoint that is not an http(s) URL.
    public init(endpoint: String?, region: String, credentials: AWSCredentials) throws {
        self.region = region
        self.credentials = credentials
        if let endpoint, !endpoint.isEmpty {
            guard let url = URLComponents(string: endpoint), let scheme = url.scheme?.lowercased(), ["http", "https"].contains(scheme),
                let host = url.host, !host.isEmpty, url.query == nil, url.path.isEmpty || url.path == "/"
            else {
                throw RepriseError.invalid(
                    "MLFLOW_S3_ENDPOINT_URL '\(endpoint)' is not an endpoint: give http(s)://host[:port], with no path.")
            }
            self.scheme = scheme
            self.host = host
            self.port = url.port
            self.pathStyle = true
        } else {
            self.scheme = "https"
            self.host = "s3.\(region).amazonaws.com"
            self.port = nil
            self.pathStyle = false
        }
    }

    /// Reads `MLFLOW_S3_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_SESSION_TOKEN`, `AWS_REGION` / `AWS_DEFAULT_REGION` (default `us-east-1`), and
    /// `REPRISE_S3_PART_SIZE` (bytes, at least 5 MiB).
    /// - Throws: `RepriseError.invalid` naming the missing or bad variable (never its value when
    ///   it is a secret).
    public static func fromEnvironment(_ env: [String: String] = ProcessInfo.processInfo.environment) throws -> S3Settings {
        func value(_ name: String) -> String? { env[name].flatMap { $0.isEmpty ? nil : $0 } }
        guard let key = value("AWS_ACCESS_KEY_ID"), let secret = value("AWS_SECRET_ACCESS_KEY") else {
            throw RepriseError.invalid(
                "S3 artifacts need credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary ones) in the server's environment.")
        }
        let region = value("AWS_REGION") ?? value("AWS_DEFAULT_REGION") ?? "us-east-1"
        guard region.utf8.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D }) else {
            throw RepriseError.invalid("AWS_REGION '\(region)' is not a region name (such as us-east-1).")
        }
        var settings = try S3Settings(
            endpoint: value("MLFLOW_S3_ENDPOINT_URL"), region: region,
            credentials: AWSCredentials(accessKeyID: key, secretAccessKey: secret, sessionToken: value("AWS_SESSION_TOKEN")))
        if let raw = value("REPRISE_S3_PART_SIZE") {
            guard let size = Int(raw), size >= minimumPartSize, size <= maximumPartSize else {
                throw RepriseError.invalid("REPRISE_S3_PART_SIZE must be a number of bytes from \(minimumPartSize) to \(maximumPartSize).")
            }
            settings.partSize = size
        }
        return settings
    }

    /// Whether requests for `bucket` name it in the path: with an endpoint, and for bucket names
    /// with dots (they do not match AWS's wildcard TLS certificate as a host name).
    func usesPathStyle(_ bucket: String) -> Bool { pathStyle || bucket.contains(".") }

    /// `http(s)://host[:port]` for display (no credentials are ever part of it).
    public var endpointDescription: String { "\(scheme)://\(hostHeader(bucket: nil))" }

    /// The `Host` header for a request to `bucket`: the bucket is part of the host name with
    /// virtual-hosted addressing; the port is given only when it is not the scheme's default.
    func hostHeader(bucket: String?) -> String {
        var h = host
        if let bucket, !usesPathStyle(bucket) { h = bucket + "." + h }
        if let port, !(scheme == "http" && port == 80) && !(scheme == "https" && port == 443) { h += ":\(port)" }
        return h
    }
}
