import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import RepriseCore

/// Cuts a stream of chunks into multipart-upload parts of exactly `partSize` bytes, except the
/// last, which has 1 to `partSize` bytes. A part is handed out only once a byte beyond it has
/// arrived, so a body of at most `partSize` bytes never becomes a multipart upload, and the
/// splitter holds at most one part plus one chunk.
struct PartSplitter {
    let partSize: Int
    private(set) var pending = ByteBuffer()

    /// - Parameter partSize: bytes per part (at least 1).
    init(partSize: Int) {
        self.partSize = max(1, partSize)
    }

    /// Adds `chunk`; returns the parts that are now complete and known not to be the last.
    mutating func append(_ chunk: ByteBuffer) -> [ByteBuffer] {
        var chunk = chunk
        pending.writeBuffer(&chunk)
        var parts: [ByteBuffer] = []
        while pending.readableBytes > partSize, let part = pending.readSlice(length: partSize) {
            parts.append(part)
        }
        if !parts.isEmpty {
            // Start a fresh buffer for the remainder (less than a part), so the parts handed out
            // keep only the old storage alive, and only while they are being uploaded.
            var rest = ByteBuffer()
            rest.reserveCapacity(pending.readableBytes)
            rest.writeBuffer(&pending)
            pending = rest
        }
        return parts
    }

    /// The bytes not yet handed out: the last part (empty only when nothing, or exactly nothing
    /// beyond the parts already handed out, arrived — which `append` rules out once a part left).
    mutating func finish() -> ByteBuffer {
        defer { pending = ByteBuffer() }
        return pending
    }
}

/// Artifacts as objects in an S3-compatible bucket under a key prefix (`s3://bucket/prefix`).
///
/// Requests are signed with SigV4 (`SigV4Signer`) and sent with AsyncHTTPClient. Memory stays
/// constant whatever the size of a file: reads stream the object chunk by chunk, and writes hold
/// at most one part (`S3Settings.partSize`, 8 MiB by default) at a time. A body smaller than a
/// part goes up in one PUT; a larger one as a multipart upload that is aborted on any failure, so
/// an object appears whole or not at all. Folders are key prefixes: a folder exists while some
/// object lies under it.
///
/// Errors are `RepriseError`s: a missing object is `RESOURCE_DOES_NOT_EXIST`; refused credentials
/// are `PERMISSION_DENIED` naming the bucket (never a key or secret); an unreachable or failing
/// store is `TEMPORARILY_UNAVAILABLE`. Every request is bounded in time (connect, idle read, and
/// the whole request until its answer starts) and every answer read into memory in size.
///
/// Call `shutdown()` once the repository is no longer used.
public final class S3ArtifactRepository: MultipartUploadRepository, Sendable {
    /// Where the artifacts live.
    public let location: S3Location
    /// The endpoint, region, credentials and limits.
    public let settings: S3Settings
    let client: HTTPClient
    let signer: SigV4Signer

    /// S3 allows at most this many parts in one upload.
    public static let maxParts = 10_000
    /// A listing longer than this is refused rather than held in memory.
    static let maxListEntries = 1_000_000
    /// The largest XML answer read into memory.
    static let maxXMLBytes = 16 * 1024 * 1024

    /// - Parameters:
    ///   - location: the bucket and key prefix.
    ///   - settings: how to reach S3 (see `S3Settings.fromEnvironment`).
    public init(location: S3Location, settings: S3Settings) {
        self.location = location
        self.settings = settings
        self.signer = SigV4Signer(credentials: settings.credentials, region: settings.region, service: "s3")
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: .disallow,
            timeout: .init(
                connect: .seconds(settings.connectTimeoutSeconds), read: .seconds(settings.readTimeoutSeconds),
                write: .seconds(settings.readTimeoutSeconds)),
            decompression: .disabled)
        configuration.connectionPool.idleTimeout = .seconds(30)
        self.client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }

    /// Closes the HTTP client's connections.
    public func shutdown() async throws {
        try await client.shutdown()
    }

    /// `s3://bucket/prefix/<path>`: the URI of an artifact path, as a run in direct mode stores it.
    public func uri(_ path: [String]) -> String {
        let k = (try? key(path)) ?? ""
        return k.isEmpty ? "s3://\(location.bucket)" : "s3://\(location.bucket)/\(k)"
    }

    /// The artifact path of an `s3://` URI that lies under this repository's root, nil when it
    /// names another bucket or lies outside the prefix.
    /// - Throws: `RepriseError.invalid` for a key that is not plain path segments (`.`, `..`,
    ///   empty segments, control characters), which S3 would store literally and a server must
    ///   not reinterpret.
    public func components(of uri: String) throws -> [String]? {
        guard uri.hasPrefix("s3://") else { return nil }
        let rest = uri.dropFirst("s3://".count)
        let slash = Validation.firstSlash(in: rest)
        guard rest[..<(slash ?? rest.endIndex)] == location.bucket else { return nil }
        // Bytes, not characters, after the bucket (see `Validation.pathComponents`).
        let key = slash.map { Validation.trimmingSlashes(rest[rest.utf8.index(after: $0)...], leading: false) } ?? ""
        let relative: String
        if location.prefix.isEmpty {
            relative = key
        } else if let below = Validation.relativePath(key, under: location.prefix) {
            relative = below
        } else {
            return nil
        }
        let comps = try Validation.artifactPathComponents(relative)
        guard comps.joined(separator: "/") == relative else {
            throw RepriseError.invalid("Invalid artifact location '\(uri)': use plain path segments (no '.', '..' or empty segments).")
        }
        return comps
    }

    /// The object key for checked path components.
    func key(_ path: [String]) throws -> String {
        for c in path where !Validation.isPlainPathComponent(c) {
            throw RepriseError.invalid("Invalid path")
        }
        let rel = path.joined(separator: "/")
        if location.prefix.isEmpty { return rel }
        return rel.isEmpty ? location.prefix : location.prefix + "/" + rel
    }

    // MARK: ArtifactRepository

    public func write<S: AsyncSequence & Sendable>(
        _ path: [String], contents: S, beforeCommit: (@Sendable () async throws -> Void)?
    ) async throws -> Int64
    where S.Element == ByteBuffer {
        guard !path.isEmpty else { throw RepriseError.invalid("Invalid path") }
        let key = try key(path)
        let display = path.joined(separator: "/")
        var splitter = PartSplitter(partSize: settings.partSize)
        var uploadID: String? = nil
        var etags: [String] = []
        var written: Int64 = 0
        do {
            for try await chunk in contents {
                let (sum, overflow) = written.addingReportingOverflow(Int64(chunk.readableBytes))
                guard !overflow else { throw RepriseError.invalid("The upload is too large.") }
                written = sum
                for part in splitter.append(chunk) {
                    let id: String
                    if let uploadID { id = uploadID } else {
                        id = try await createMultipartUpload(key, display: display)
                        uploadID = id
                    }
                    etags.append(try await uploadPart(key, uploadID: id, number: etags.count + 1, body: part, display: display))
                }
            }
            let last = splitter.finish()
            if let uploadID {
                etags.append(try await uploadPart(key, uploadID: uploadID, number: etags.count + 1, body: last, display: display))
                try await beforeCommit?()
                try await completeMultipartUpload(
                    key, uploadID: uploadID, parts: etags.enumerated().map { UploadedPart(number: $0.offset + 1, etag: $0.element) },
                    display: display)
            } else {
                try await beforeCommit?()
                let response = try await send(.PUT, key: key, body: last, what: "storing '\(display)'")
                try await drain(response)
            }
        } catch {
            if let uploadID {
                // Not in this (possibly cancelled) task: the abort must still go out.
                let id = uploadID
                await Task.detached { [self] in await self.abortMultipartUpload(key, uploadID: id) }.value
            }
            throw error
        }
        return written
    }

    public func kind(_ path: [String]) async throws -> ArtifactKind {
        if path.isEmpty { return .directory }
        let key = try key(path)
        do {
            let response = try await send(.HEAD, key: key, what: "looking up '\(path.joined(separator: "/"))'")
            let size = response.headers.first(name: "content-length").flatMap { Int64($0) } ?? 0
            try await drain(response)
            return .file(size: max(0, size))
        } catch let e as RepriseError where e.code == .resourceDoesNotExist {
            // Not an object: a folder if anything lies under it.
        }
        let page = try await listPage(prefix: key + "/", delimiter: "/", maxKeys: 1, token: nil)
        return page.objects.isEmpty && page.commonPrefixes.isEmpty ? .missing : .directory
    }

    public func read(_ path: [String], consume: (ByteBuffer) async throws -> Void) async throws {
        let display = path.joined(separator: "/")
        let response = try await send(.GET, key: try key(path), what: "reading '\(display)'")
        var chunks = response.body.makeAsyncIterator()
        while true {
            let next: ByteBuffer?
            do {
                next = try await chunks.next()
            } catch {
                throw transportError(error, what: "reading '\(display)'")
            }
            guard let chunk = next else { return }
            try await consume(chunk)
        }
    }

    public func list(_ path: [String]) async throws -> [ArtifactFileInfo]? {
        let dir = try key(path)
        let prefix = dir.isEmpty ? "" : dir + "/"
        var entries: [ArtifactFileInfo] = []
        var token: String? = nil
        repeat {
            let page = try await listPage(prefix: prefix, delimiter: "/", maxKeys: 1000, token: token)
            entries += page.entries(under: prefix)
            guard entries.count <= Self.maxListEntries else {
                throw RepriseError(.resourceExhausted, "'\(path.joined(separator: "/"))' holds more than \(Self.maxListEntries) entries; list a sub-folder.")
            }
            let next = page.isTruncated ? page.nextContinuationToken : nil
            if next != nil && next == token { throw S3XML.ParseError(reason: "a listing that repeats its continuation token") }
            token = next
        } while token != nil
        if entries.isEmpty { return path.isEmpty ? [] : nil }
        return entries.sorted { ($0.path, $0.isDir ? 1 : 0) < ($1.path, $1.isDir ? 1 : 0) }
    }

    public func delete(_ path: [String]) async throws {
        guard !path.isEmpty else { throw RepriseError.invalid("Refusing to delete the artifact root") }
        let key = try key(path)
        try await deleteObject(key)
        // A folder: every object under it (continuation tokens stay valid while objects go).
        var token: String? = nil
        var pages = 0
        repeat {
            let page = try await listPage(prefix: key + "/", delimiter: nil, maxKeys: 1000, token: token)
            for object in page.objects { try await deleteObject(object.key) }
            let next = page.isTruncated ? page.nextContinuationToken : nil
            if next != nil && next == token { throw S3XML.ParseError(reason: "a listing that repeats its continuation token") }
            token = next
            pages += 1
            guard pages <= Self.maxListEntries / 1000 else {
                throw RepriseError(.resourceExhausted, "'\(path.joined(separator: "/"))' holds too many objects to delete in one request.")
            }
        } while token != nil
    }

    // MARK: MultipartUploadRepository

    /// How long a presigned part URL stays valid: an hour, as boto3's `generate_presigned_url`
    /// (what MLflow's own S3 repository uses) by default. Checked when a part's PUT starts.
    public static let partURLLifetimeSeconds = 3600

    public func beginMultipartUpload(_ path: [String], partCount: Int) async throws -> (uploadID: String, partURLs: [String]) {
        guard !path.isEmpty else { throw RepriseError.invalid("Invalid path") }
        guard (1...Self.maxParts).contains(partCount) else {
            throw RepriseError.invalid("Invalid value \(partCount) for parameter 'num_parts': it must be between 1 and \(Self.maxParts).")
        }
        let key = try key(path)
        let id = try await createMultipartUpload(key, display: path.joined(separator: "/"))
        let (host, encodedPath) = target(key: key)
        let now = Date()
        let urls = (1...partCount).map { number in
            let query = signer.presignedQuery(
                SigV4Request(
                    method: "PUT", encodedPath: encodedPath, query: [("partNumber", String(number)), ("uploadId", id)],
                    headers: [("host", host)]),
                date: now, expires: Self.partURLLifetimeSeconds)
            return "\(settings.scheme)://\(host)\(encodedPath)?\(query)"
        }
        return (id, urls)
    }

    public func finishMultipartUpload(_ path: [String], uploadID: String, parts: [UploadedPart]) async throws -> Int64 {
        guard !path.isEmpty else { throw RepriseError.invalid("Invalid path") }
        let key = try key(path)
        // The upload id comes from the client: ask for it first (ListParts, one part), so an id that
        // names no open upload is the client's 404 (NoSuchUpload) on every S3 implementation. Some
        // answer a CompleteMultipartUpload for an unknown id with a 500 instead (moto does), which
        // would read as the store failing.
        try await drain(try await send(
            .GET, key: key, query: [("max-parts", "1"), ("uploadId", uploadID)], what: "completing the upload of '\(path.joined(separator: "/"))'"))
        try await completeMultipartUpload(key, uploadID: uploadID, parts: parts, display: path.joined(separator: "/"))
        guard case .file(let size) = try await kind(path) else {
            throw RepriseError(.temporarilyUnavailable, "The artifact store completed the upload of '\(path.joined(separator: "/"))' but does not show the object.")
        }
        return size
    }

    public func cancelMultipartUpload(_ path: [String], uploadID: String) async throws {
        guard !path.isEmpty else { throw RepriseError.invalid("Invalid path") }
        let key = try key(path)
        try await drain(try await send(.DELETE, key: key, query: [("uploadId", uploadID)], what: "aborting the upload of '\(path.joined(separator: "/"))'"))
    }

    // MARK: S3 operations

    func listPage(prefix: String, delimiter: String?, maxKeys: Int, token: String?) async throws -> S3ListPage {
        var query = [("list-type", "2"), ("encoding-type", "url"), ("prefix", prefix), ("max-keys", String(maxKeys))]
        if let delimiter { query.append(("delimiter", delimiter)) }
        if let token { query.append(("continuation-token", token)) }
        let response = try await send(.GET, key: nil, query: query, what: "listing '\(prefix)'")
        let body = try await collect(response, limit: Self.maxXMLBytes, what: "listing '\(prefix)'")
        do {
            return try S3ListPage.parse(body.readableBytesView, urlEncoded: true)
        } catch let e as S3XML.ParseError {
            throw RepriseError(.temporarilyUnavailable, "The artifact store sent an unreadable listing for bucket '\(location.bucket)': \(e.reason).")
        }
    }

    func deleteObject(_ key: String) async throws {
        do {
            try await drain(try await send(.DELETE, key: key, what: "deleting an object"))
        } catch let e as RepriseError where e.code == .resourceDoesNotExist {
            // Already gone.
        }
    }

    func createMultipartUpload(_ key: String, display: String) async throws -> String {
        let what = "starting the upload of '\(display)'"
        let response = try await send(.POST, key: key, query: [("uploads", "")], what: what)
        let body = try await collect(response, limit: 1024 * 1024, what: what)
        guard let id = S3XML.uploadID(body.readableBytesView) else {
            throw RepriseError(.temporarilyUnavailable, "The artifact store did not start a multipart upload in bucket '\(location.bucket)'.")
        }
        return id
    }

    func uploadPart(_ key: String, uploadID: String, number: Int, body: ByteBuffer, display: String) async throws -> String {
        guard number <= Self.maxParts else {
            throw RepriseError.invalid(
                "'\(display)' is too large: S3 takes at most \(Self.maxParts) parts of \(settings.partSize) bytes (set REPRISE_S3_PART_SIZE higher).")
        }
        let response = try await send(
            .PUT, key: key, query: [("partNumber", String(number)), ("uploadId", uploadID)], body: body,
            what: "uploading part \(number) of '\(display)'")
        guard let etag = response.headers.first(name: "etag"), !etag.isEmpty else {
            try? await drain(response)
            throw RepriseError(.temporarilyUnavailable, "The artifact store did not acknowledge part \(number) of '\(display)'.")
        }
        try await drain(response)
        return etag
    }

    func completeMultipartUpload(_ key: String, uploadID: String, parts: [UploadedPart], display: String) async throws {
        let what = "completing the upload of '\(display)'"
        let response = try await send(
            .POST, key: key, query: [("uploadId", uploadID)], headers: [("content-type", "application/xml")],
            body: ByteBuffer(string: S3XML.completeMultipartUpload(parts)), what: what)
        // S3 can answer 200 and still fail: the error is then in the body.
        let body = try await collect(response, limit: 1024 * 1024, what: what)
        if let error = S3XML.embeddedError(body.readableBytesView) {
            throw failure(status: 500, error: error, what: what)
        }
    }

    func abortMultipartUpload(_ key: String, uploadID: String) async {
        // Best effort: a failed abort leaves parts that S3's lifecycle rules can expire, but never
        // an object.
        if let response = try? await send(.DELETE, key: key, query: [("uploadId", uploadID)], what: "aborting an upload") {
            try? await drain(response)
        }
    }

    // MARK: HTTP

    /// The `Host` header and the encoded path of a request for `key` (nil: the bucket itself).
    func target(key: String?) -> (host: String, path: String) {
        let bucket = location.bucket
        var path: String
        if settings.usesPathStyle(bucket) {
            path = "/" + SigV4.uriEncode(bucket)
            if let key { path += "/" + SigV4.uriEncode(key, keepSlash: true) }
        } else {
            path = "/" + (key.map { SigV4.uriEncode($0, keepSlash: true) } ?? "")
        }
        return (settings.hostHeader(bucket: bucket), path)
    }

    /// Signs and sends one request; answers other than 2xx become `RepriseError`s.
    func send(
        _ method: HTTPMethod, key: String?, query: [(String, String)] = [], headers extra: [(String, String)] = [],
        body: ByteBuffer? = nil, what: String
    ) async throws -> HTTPClientResponse {
        let (host, path) = target(key: key)
        let payload = body.map { b in b.withUnsafeReadableBytes { SigV4Payload.of($0) } } ?? .empty
        let signed = signer.sign(
            SigV4Request(method: method.rawValue, encodedPath: path, query: query, headers: [("host", host)] + extra, payload: payload),
            date: Date(), contentHashHeader: true)
        let queryString = SigV4.canonicalQuery(query)
        var request = HTTPClientRequest(url: "\(settings.scheme)://\(host)\(path)\(queryString.isEmpty ? "" : "?" + queryString)")
        request.method = method
        for (name, value) in signed { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(body) }
        let response: HTTPClientResponse
        do {
            response = try await client.execute(request, timeout: .seconds(settings.requestTimeoutSeconds))
        } catch {
            throw transportError(error, what: what)
        }
        if (200..<300).contains(Int(response.status.code)) { return response }
        let errorBody = (try? await response.body.collect(upTo: 64 * 1024)) ?? ByteBuffer()
        throw failure(status: Int(response.status.code), error: S3ErrorBody.parse(errorBody.readableBytesView), what: what)
    }

    /// Reads a whole (small) answer.
    func collect(_ response: HTTPClientResponse, limit: Int, what: String) async throws -> ByteBuffer {
        do {
            return try await response.body.collect(upTo: limit)
        } catch {
            throw transportError(error, what: what)
        }
    }

    /// Reads and drops an answer's body, so its connection can serve the next request.
    func drain(_ response: HTTPClientResponse) async throws {
        _ = try await collect(response, limit: 1024 * 1024, what: "reading an answer")
    }

    /// A failure to talk to the store at all.
    func transportError(_ error: any Error, what: String) -> any Error {
        if error is CancellationError || error is RepriseError { return error }
        let reason: String
        if let e = error as? HTTPClientError {
            switch e {
            case .connectTimeout, .deadlineExceeded, .readTimeout, .writeTimeout: reason = "it timed out"
            case .cancelled: return CancellationError()
            default: reason = "\(e)"
            }
        } else {
            reason = "the connection failed"
        }
        return RepriseError(
            .temporarilyUnavailable,
            "The artifact store at \(settings.endpointDescription) could not be used while \(what) in bucket '\(location.bucket)': \(reason).")
    }

    /// Maps an S3 error answer to a `RepriseError`.
    func failure(status: Int, error: S3ErrorBody, what: String) -> RepriseError {
        let code = error.code ?? "HTTP \(status)"
        let bucket = location.bucket
        switch (status, error.code ?? "") {
        case (_, "NoSuchBucket"):
            return RepriseError(
                .temporarilyUnavailable,
                "The artifact store has no bucket '\(bucket)' (at \(settings.endpointDescription)). Create it, or start the server with another s3:// destination.")
        case (_, "NoSuchUpload"):
            return RepriseError.notFound("No such multipart upload (\(what)): it was completed or aborted, or the upload id is wrong.")
        case (_, "NoSuchKey"), (404, _):
            return RepriseError.notFound("No such artifact (\(what)).")
        case (_, "AccessDenied"), (_, "SignatureDoesNotMatch"), (_, "InvalidAccessKeyId"), (_, "ExpiredToken"), (_, "InvalidToken"),
            (_, "TokenRefreshRequired"), (401, _), (403, _):
            return RepriseError(
                .permissionDenied,
                "The artifact store refused the server's credentials for bucket '\(bucket)' (\(code)) while \(what). Check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN in the server's environment, and the bucket's policy.")
        case (_, "EntityTooLarge"):
            return RepriseError.invalid("The artifact store refused the file as too large (\(what)).")
        case (_, "InvalidPart"), (_, "InvalidPartOrder"), (_, "EntityTooSmall"), (_, "InvalidArgument"), (_, "MalformedXML"):
            // What a client's multipart upload got wrong (an unknown ETag, parts out of order or too
            // small): its input, not the store's failure.
            let detail = (error.message ?? "").filter { !$0.isNewline }.prefix(200)
            return RepriseError.invalid("The artifact store refused \(what): \(code)\(detail.isEmpty ? "" : " (\(detail))").")
        case (500..., _), (_, "SlowDown"), (_, "ServiceUnavailable"), (_, "InternalError"), (_, "RequestTimeout"):
            return RepriseError(.temporarilyUnavailable, "The artifact store failed (\(code)) while \(what) in bucket '\(bucket)'. Try again.")
        default:
            let detail = (error.message ?? "").filter { !$0.isNewline }.prefix(200)
            return RepriseError(
                .internalError, "The artifact store refused \(what) in bucket '\(bucket)': \(code)\(detail.isEmpty ? "" : " (\(detail))").")
        }
    }
}
