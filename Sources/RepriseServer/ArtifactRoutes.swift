import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import NIOConcurrencyHelpers
import NIOCore
import RepriseArtifacts
import RepriseCore

/// The SHA-256 and size of bytes as they stream past (`UploadBody`).
final class StreamDigest: Sendable {
    private let state = NIOLockedValueBox((hasher: SHA256(), size: Int64(0)))

    /// Hashes `chunk`; returns the byte count so far.
    @discardableResult
    func update(_ chunk: ByteBuffer) -> Int64 {
        state.withLockedValue { s in
            chunk.withUnsafeReadableBytes { s.hasher.update(bufferPointer: $0) }
            s.size += Int64(chunk.readableBytes)
            return s.size
        }
    }

    /// The lowercase hex SHA-256 and the byte count so far.
    func result() -> (sha256: String, size: Int64) {
        state.withLockedValue { s in (Hex.encode(s.hasher.finalize()), s.size) }
    }
}

/// An upload's bytes on their way to storage, passed on unchanged: `digest` hashes them as they
/// stream (no second read, no copy), and more than `limit` bytes fail the upload.
struct UploadBody<Base: AsyncSequence & Sendable>: AsyncSequence, Sendable where Base.Element == ByteBuffer {
    typealias Element = ByteBuffer
    let base: Base
    let limit: Int64
    let digest: StreamDigest

    struct AsyncIterator: AsyncIteratorProtocol {
        var inner: Base.AsyncIterator
        let limit: Int64
        let digest: StreamDigest
        mutating func next() async throws -> ByteBuffer? {
            guard let chunk = try await inner.next() else { return nil }
            if digest.update(chunk) > limit {
                throw RepriseError.invalid("The upload is larger than the limit of \(limit) bytes.")
            }
            return chunk
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(inner: base.makeAsyncIterator(), limit: limit, digest: digest) }
}

extension String {
    func leftPadded(_ n: Int) -> String { count >= n ? self : String(repeating: "0", count: n - count) + self }
}

extension HTTPField.Name {
    static let xContentTypeOptions = Self("X-Content-Type-Options")!
    static let xRequestID = Self("X-Request-Id")!
    static let xRepriseActor = Self("X-Reprise-Actor")!
}

extension RepriseAPI {
    static let proxyPrefix = "/api/2.0/mlflow-artifacts/artifacts"

    /// Creates the local artifact folders, once, at start-up (a repository does no I/O until then).
    /// The proxy's folder must exist; a local default artifact root the server cannot create is
    /// left to the clients that write there, with a warning.
    public func prepareArtifactRoots() async throws {
        for repo in localRepositories {
            do {
                try await repo.prepare()
            } catch {
                if let proxy = artifacts as? LocalArtifactRepository, proxy.root == repo.root {
                    throw RepriseError.invalid("Cannot create the artifacts folder \(repo.root): \(error)")
                }
                logger.warning("Cannot create the artifact root \(repo.root); clients must create it: \(error)")
            }
        }
    }

    /// Turns a raw (percent-encoded) relative path into checked components.
    static func components(_ raw: String) throws -> [String] {
        guard let decoded = Validation.percentDecode(raw) else { throw RepriseError.invalid("Invalid path") }
        return try Validation.artifactPathComponents(decoded)
    }

    func requireProxy() throws -> any ArtifactRepository {
        guard let artifacts else {
            throw RepriseError(
                .temporarilyUnavailable,
                "Endpoint disabled: the artifact proxy is off (server started with --no-serve-artifacts). Clients read and write artifact storage directly."
            )
        }
        return artifacts
    }

    /// The repository and base components for an artifact location stored on a run, a logged model
    /// or a model version.
    ///
    /// This is the one place that decides which local files a location may reach. A client supplies
    /// these locations (an experiment's `artifact_location`, a version's `source`), so they are
    /// stored as given but opened only when, after percent-decoding and normalisation, they lie
    /// under a root the server was started with (`--artifacts-destination`, a local
    /// `--default-artifact-root`, either of them as `s3://bucket/prefix`). Anything else is a 403:
    /// the server never reads or writes a location a client picked.
    func repository(for rootURI: String) throws -> (any ArtifactRepository, [String]) {
        try Validation.rejectControlCharacters(rootURI, field: "artifact location", isURI: true)
        if let rest = ArtifactURI.proxyPath(rootURI) {
            let relative = Validation.percentDecode(rest) ?? rest
            return (try requireProxy(), try Validation.artifactPathComponents(Validation.trimmingSlashes(relative, trailing: false)))
        }
        if rootURI.hasPrefix("http://") || rootURI.hasPrefix("https://"), let relative = Self.proxyPath(ofURL: rootURI, staticPrefix: config.staticPrefix) {
            // This server's own proxy spelled as a URL (`--default-artifact-root
            // http://host/api/2.0/mlflow-artifacts/artifacts/experiments`): the same files as
            // `mlflow-artifacts:/…`, whichever host name the client used to reach it.
            return (try requireProxy(), try Validation.artifactPathComponents(relative))
        }
        if rootURI.hasPrefix("s3://") {
            for repo in s3Repositories {
                if let comps = try repo.components(of: rootURI) { return (repo, comps) }
            }
            throw RepriseError(
                .permissionDenied,
                "Artifact location '\(rootURI)' is outside this server's artifact roots (--artifacts-destination, --default-artifact-root), so the server does not open it. Read those artifacts from their storage directly."
            )
        }
        var path = rootURI
        if path.hasPrefix("file://") {
            path = String(path.dropFirst("file://".count))
            if path.hasPrefix("localhost/") { path = String(path.dropFirst("localhost".count)) }
        } else if path.hasPrefix("file:") {
            path = String(path.dropFirst("file:".count))
        }
        guard Validation.startsWithSlash(path) else {
            throw RepriseError(.notImplemented, "Artifact location '\(rootURI)' is not served by this server.")
        }
        guard let decoded = Validation.percentDecode(path) else { throw RepriseError.invalid("Invalid artifact location '\(rootURI)'") }
        let normalized = Validation.normpath(decoded)
        for repo in localRepositories {
            if let relative = Validation.relativePath(normalized, under: repo.root) {
                return (repo, try Validation.artifactPathComponents(relative))
            }
        }
        throw RepriseError(
            .permissionDenied,
            "Artifact location '\(rootURI)' is outside this server's artifact roots (--artifacts-destination, a local --default-artifact-root), so the server does not open it. Read those artifacts from their storage directly."
        )
    }

    /// The path under the artifact proxy that an `http(s)://host[:port][/prefix]/api/2.0/mlflow-artifacts/artifacts/…`
    /// URL names, decoded; nil for any other URL.
    static func proxyPath(ofURL uri: String, staticPrefix: String) -> String? {
        let afterScheme = uri.drop { $0 != ":" }.dropFirst(3)
        guard let slash = Validation.firstSlash(in: afterScheme) else { return nil }
        var path = String(afterScheme[slash...])
        if let cut = path.firstIndex(where: { $0 == "?" || $0 == "#" }) { path = String(path[..<cut]) }
        if !staticPrefix.isEmpty, path.hasPrefix(staticPrefix + "/") { path = String(path.dropFirst(staticPrefix.count)) }
        let base = "/api/2.0/mlflow-artifacts/artifacts"
        guard path == base || path.hasPrefix(base + "/"), let decoded = Validation.percentDecode(String(path.dropFirst(base.count))) else {
            return nil
        }
        return Validation.trimmingSlashes(decoded, trailing: false)
    }

    /// `attachment; filename=NAME` as the reference sends it; names with characters that are not
    /// safe in a header token are sent percent-encoded in `filename*` (RFC 6266) instead.
    static func contentDisposition(_ name: String) -> String {
        let safe = name.utf8.allSatisfy { b in
            (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || "-_.+~".utf8.contains(b)
        }
        if safe { return "attachment; filename=\(name)" }
        var encoded = ""
        for b in name.utf8 {
            if (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || "-_.~".utf8.contains(b) {
                encoded.append(Character(Unicode.Scalar(b)))
            } else {
                encoded += "%" + String(b, radix: 16, uppercase: true).leftPadded(2)
            }
        }
        return "attachment; filename*=UTF-8''\(encoded)"
    }

    static func mimeType(_ name: String) -> String {
        let lower = name.lowercased()
        let ext = lower.split(separator: ".").count > 1 ? String(lower.split(separator: ".").last!) : ""
        switch ext {
        case "txt", "log", "json", "yaml", "yml", "md", "csv", "tsv", "py", "ini", "toml", "cfg", "sh", "html", "htm",
            "xml", "js", "css", "jsonl":
            return "text/plain"
        case "png": return "image/png"
        case "jpg", "jpeg": return "image/jpeg"
        case "gif": return "image/gif"
        case "svg": return "image/svg+xml"
        case "pdf": return "application/pdf"
        default:
            return ["mlmodel", "mlproject", "license", "readme", "requirements"].contains(lower)
                ? "text/plain" : "application/octet-stream"
        }
    }

    func download(_ repo: any ArtifactRepository, _ comps: [String], displayPath: String) async throws -> Response {
        switch try await repo.kind(comps) {
        case .missing:
            throw RepriseError.notFound("No such artifact: '\(displayPath)'")
        case .directory:
            throw RepriseError.invalid("'\(displayPath)' is a directory, not a file")
        case .file(let size):
            let name = comps.last ?? "artifact"
            var headers: HTTPFields = [
                .contentType: Self.mimeType(name),
                .contentDisposition: Self.contentDisposition(name),
            ]
            headers[.xContentTypeOptions] = "nosniff"
            let body = ResponseBody(contentLength: Int(size)) { writer in
                try await repo.read(comps) { chunk in try await writer.write(chunk) }
                try await writer.finish(nil)
            }
            return Response(status: .ok, headers: headers, body: body)
        }
    }

    func listUnder(rootURI: String, relative: String) async throws -> Response {
        let (repo, base) = try repository(for: rootURI)
        let rel = try Validation.artifactPathComponents(relative)
        var o = JSONObject([("root_uri", .string(rootURI))])
        if let entries = try await repo.list(base + rel) {
            let prefix = rel.isEmpty ? "" : rel.joined(separator: "/") + "/"
            let files = entries.map { ArtifactFileInfo(path: prefix + $0.path, isDir: $0.isDir, fileSize: $0.fileSize).json }
            if !files.isEmpty { o["files"] = .array(files) }
        }
        return Self.json(.object(o))
    }

    func downloadUnder(rootURI: String, relative: String) async throws -> Response {
        let rel = try Self.filePath(relative)
        let (repo, base) = try repository(for: rootURI)
        return try await download(repo, base + rel, displayPath: relative)
    }

    /// A relative path naming a file: its components, or "Invalid path". Checked before the
    /// run or version it is under is looked up, as the reference does.
    static func filePath(_ relative: String) throws -> [String] {
        let rel = try Validation.artifactPathComponents(relative)
        guard !rel.isEmpty else { throw RepriseError.invalid("Invalid path") }
        return rel
    }

    /// Every spelling of the place `location` names: through the proxy (`mlflow-artifacts:/p`), as
    /// a path or `file://` URI under the local root that holds it, or as `s3://bucket/key` in the
    /// bucket that holds it. A seal recorded under one spelling must hold under all of them.
    func spellings(of location: String) -> [String] {
        guard let (repo, comps) = try? repository(for: location) else { return [location] }
        let rel = comps.joined(separator: "/")
        var out = [location]
        if let local = repo as? LocalArtifactRepository {
            let path = rel.isEmpty ? local.root : local.root + "/" + rel
            out += [path, "file://" + path]
            if let proxy = artifacts as? LocalArtifactRepository, proxy.root == local.root { out.append("mlflow-artifacts:/" + rel) }
        } else if let bucket = repo as? S3ArtifactRepository {
            out.append(bucket.uri(comps))
            if let proxy = artifacts as? S3ArtifactRepository, proxy === bucket { out.append("mlflow-artifacts:/" + rel) }
        }
        return Array(Set(out)).sorted()
    }

    /// Refuses a write or delete at `location` (a full artifact URI) that would change sealed evidence.
    func requireUnsealedArtifacts(_ location: String) async throws {
        if let version = try await store.artifactSeal(locations: spellings(of: location)) {
            throw RepriseError(
                .permissionDenied,
                "'\(location)' is sealed: model version \(version) was registered from these files, so they cannot be overwritten or deleted. Log a new run or model instead."
            )
        }
    }

    /// The one spelling digests are recorded and looked up under: `mlflow-artifacts:/<path>` for
    /// anything the proxy serves (a stored `mlflow-artifacts://host:port/p` names the same place),
    /// the location as given otherwise, without a trailing `/`.
    func digestLocation(_ location: String) -> String {
        if location.hasPrefix("mlflow-artifacts:"), let (_, comps) = try? repository(for: location) {
            return "mlflow-artifacts:/" + comps.joined(separator: "/")
        }
        return location.hasSuffix("/") ? String(location.dropLast()) : location
    }

    /// Streams an upload into `repo` at `comps` (refused while `location` is sealed, also when the
    /// seal came while the body arrived) and records its size and SHA-256, computed on the way.
    ///
    /// The record is written once the file is stored, so it never describes bytes that are not
    /// there; if recording fails the client gets the error and the file stays (`verify` then calls
    /// it unrecorded until it is uploaded again).
    func storeRecorded<B: AsyncSequence & Sendable>(
        _ repo: any ArtifactRepository, _ comps: [String], location: String, body: B, limit: Int64, method: String
    ) async throws where B.Element == ByteBuffer {
        try await requireUnsealedArtifacts(location)
        let digest = StreamDigest()
        let written = try await repo.write(comps, contents: UploadBody(base: body, limit: limit, digest: digest)) {
            try await self.requireUnsealedArtifacts(location)  // sealed while the body arrived?
        }
        let (sha256, size) = digest.result()
        guard size == written else {
            throw RepriseError(.internalError, "The artifact store wrote \(written) bytes of \(size).")
        }
        try await recordDigest(location, size: size, sha256: sha256, method: method)
    }

    /// Records what `location` held when it was stored (the one place a digest record is made).
    /// - Returns: the record as stored.
    @discardableResult
    func recordDigest(_ location: String, size: Int64, sha256: String?, method: String) async throws -> ArtifactDigest {
        let record = ArtifactDigest(
            location: digestLocation(location), size: size, sha256: sha256, recordedTime: Int64(Date().timeIntervalSince1970 * 1000),
            method: method)
        try await store.recordArtifactDigest(record)
        return record
    }

    /// Hashes a completed multipart upload by reading the object back from the store once, in the
    /// background (the client's `complete` does not wait for it), and adds the SHA-256 to its
    /// size-only record unless another upload of the location replaced that record meanwhile. At
    /// most `readbacks` run at once; one that fails leaves the record size-only (`verify` says
    /// unhashed) and is logged.
    func hashAfterCompletion(_ repo: any ArtifactRepository, _ comps: [String], record: ArtifactDigest) {
        let (store, logger, readbacks) = (self.store, self.logger, self.readbacks)
        Task {
            do {
                try await readbacks.acquire(timeout: .seconds(3600))
                defer { Task { await readbacks.release() } }
                let digest = StreamDigest()
                try await repo.read(comps) { chunk in digest.update(chunk) }
                let (sha256, size) = digest.result()
                guard size == record.size else {
                    logger.warning("multipart upload read back with another size", metadata: ["location": "\(record.location)", "size": "\(size)"])
                    return
                }
                _ = try await store.completeArtifactDigest(
                    location: record.location, recordedTime: record.recordedTime, size: size, sha256: sha256, method: "multipart-readback")
            } catch {
                logger.warning("multipart upload not hashed", metadata: ["location": "\(record.location)", "error": "\(error)"])
            }
        }
    }

    /// The largest MLflow multipart body read: `complete` lists up to 10,000 parts, each with its
    /// presigned URL echoed back (about 1 KiB).
    static let maxMultipartBody = 32 * 1024 * 1024

    /// The object a multipart call is about: `<artifact_path>/<basename of path>`, as MLflow's S3
    /// repository names it. `path` is the client's local file name; only its last component is
    /// used (checked like any other), and nothing is ever opened there.
    static func multipartTarget(_ dir: [String], _ p: Params) throws -> [String] {
        let local = try p.requiredString("path")
        // After the last separator, as os.path.basename: "dir/" names no file.
        let base = String(local[(local.lastIndex(where: { $0 == "/" || $0 == "\\" }).map { local.index(after: $0) } ?? local.startIndex)...])
        let name = try Validation.artifactPathComponents(base)
        guard name.count == 1 else { throw RepriseError.invalid("Invalid path") }
        return dir + name
    }

    /// The storage's upload id: opaque, but bounded and printable.
    static func uploadID(_ p: Params) throws -> String {
        guard let id = try p.string("upload_id"), !id.isEmpty else {
            throw RepriseError.invalid("Missing value for required parameter 'upload_id'.")
        }
        guard id.utf8.count <= 1024, !Validation.hasControlCharacter(id) else {
            throw RepriseError.invalid("Invalid value for parameter 'upload_id': not an upload id.")
        }
        return id
    }

    /// `parts` of `mpu/complete`: `[{part_number, etag, url?}]`, part numbers 1 ... 10,000 in
    /// strictly ascending order (as S3 requires), each with the ETag its PUT answered.
    static func uploadedParts(_ p: Params) throws -> [UploadedPart] {
        guard try p.raw("parts") != nil else { throw RepriseError.invalid("Missing value for required parameter 'parts'.") }
        let items = try p.array("parts")
        guard !items.isEmpty else { throw RepriseError.invalid("Invalid value for parameter 'parts': at least one part is needed.") }
        guard items.count <= S3ArtifactRepository.maxParts else {
            throw RepriseError.invalid("Invalid value for parameter 'parts': at most \(S3ArtifactRepository.maxParts) parts.")
        }
        var out: [UploadedPart] = []
        for item in items {
            guard case .object(let o) = item, let numberValue = o["part_number"], let etagValue = o["etag"] else {
                throw RepriseError.invalid("Invalid value for parameter 'parts': each part needs part_number and etag.")
            }
            let number = try Params.int64(numberValue, field: "part_number")
            guard (1...Int64(S3ArtifactRepository.maxParts)).contains(number) else {
                throw RepriseError.invalid("Invalid value for parameter 'parts': part_number must be between 1 and \(S3ArtifactRepository.maxParts), got \(number).")
            }
            guard case .string(let etag) = etagValue, !etag.isEmpty, etag.utf8.count <= 1024, !Validation.hasControlCharacter(etag) else {
                throw RepriseError.invalid("Invalid value for parameter 'parts': part \(number) has no usable etag.")
            }
            if let last = out.last, Int64(last.number) >= number {
                throw RepriseError.invalid("Invalid value for parameter 'parts': part numbers must be in ascending order without repeats.")
            }
            out.append(UploadedPart(number: Int(number), etag: etag))
        }
        return out
    }

    /// The proxy's repository when it takes multipart uploads (an S3 destination); otherwise the
    /// 501 whose message the mlflow client recognises, word for word, and falls back to one PUT.
    /// The checked `{artifact_path...}` is the folder of a multipart call (validated before the 501,
    /// as the reference does, so a bad path is 400 on every server).
    func requireMultipart(_ call: Call) throws -> (any MultipartUploadRepository, [String]) {
        let proxy = try requireProxy()
        let dir = try Self.components(call.rest)
        guard let repo = proxy as? any MultipartUploadRepository else {
            throw RepriseError(.notImplemented, "Multipart upload is not supported for the current artifact repository")
        }
        return (repo, dir)
    }

    func registerArtifacts() {
        let store = self.store
        let maxArtifact = config.maxArtifactBytes
        route(.put, Self.proxyPrefix + "/{artifact_path...}", access: .experiment(.update, .artifactPath)) { [self] call in
            let repo = try requireProxy()
            let comps = try Self.components(call.rest)
            guard !comps.isEmpty else { throw RepriseError.invalid("Invalid path") }
            try await storeRecorded(
                repo, comps, location: "mlflow-artifacts:/" + comps.joined(separator: "/"), body: call.request.body, limit: maxArtifact,
                method: "put")
            return Self.json(Self.empty)
        }
        route(.get, Self.proxyPrefix + "/{artifact_path...}", access: .experiment(.read, .artifactPath)) { [self] call in
            let repo = try requireProxy()
            let comps = try Self.components(call.rest)
            guard !comps.isEmpty else { throw RepriseError.invalid("Invalid path") }
            return try await download(repo, comps, displayPath: comps.joined(separator: "/"))
        }
        route(.delete, Self.proxyPrefix + "/{artifact_path...}", access: .experiment(.delete, .artifactPath)) { [self] call in
            let repo = try requireProxy()
            let comps = try Self.components(call.rest)
            guard !comps.isEmpty else { throw RepriseError.invalid("Invalid path") }
            let location = "mlflow-artifacts:/" + comps.joined(separator: "/")
            try await requireUnsealedArtifacts(location)
            try await repo.delete(comps)
            try await store.forgetArtifactDigests(at: location)
            return Self.json(Self.empty)
        }
        route(.get, Self.proxyPrefix, access: .experiment(.read, .artifactListPath)) { [self] call in
            let repo = try requireProxy()
            let comps = try Validation.artifactPathComponents(call.query["path"]?.first ?? "")
            guard let entries = try await repo.list(comps) else { return Self.json(Self.empty) }
            if entries.isEmpty { return Self.json(Self.empty) }
            return Self.json(["files": .array(entries.map(\.json))])
        }
        // MLflow's proxied multipart upload (A5-A7), for an S3 destination: the server starts the
        // upload and presigns one PUT per part; the client sends the parts straight to the bucket
        // and comes back to complete or abort. Those bytes never pass through the server, so their
        // SHA-256 cannot be taken in-stream: the record holds the size only (method `multipart`),
        // and `reprise artifacts verify` says the file is unhashed rather than calling it verified.
        let mpu = "/api/2.0/mlflow-artifacts/mpu"
        route(.post, mpu + "/create/{artifact_path...}", access: .experiment(.update, .artifactPath)) { [self] call in
            let (repo, dir) = try requireMultipart(call)
            let p = Params(source: .json(try await call.jsonBody(limit: 64 * 1024)))
            let comps = try Self.multipartTarget(dir, p)
            guard let parts = try p.int64("num_parts") else {
                throw RepriseError.invalid("Missing value for required parameter 'num_parts'.")
            }
            try await requireUnsealedArtifacts("mlflow-artifacts:/" + comps.joined(separator: "/"))
            // The repository decides the range (S3: 1 ... 10,000).
            let (uploadID, urls) = try await repo.beginMultipartUpload(comps, partCount: Int(parts))
            let credentials = urls.enumerated().map { i, url in
                JSONValue.object(JSONObject([("url", .string(url)), ("part_number", .int(Int64(i + 1))), ("headers", .object(JSONObject()))]))
            }
            return Self.json(["upload_id": .string(uploadID), "credentials": .array(credentials)])
        }
        route(.post, mpu + "/complete/{artifact_path...}", access: .experiment(.update, .artifactPath)) { [self] call in
            let (repo, dir) = try requireMultipart(call)
            let p = Params(source: .json(try await call.jsonBody(limit: Self.maxMultipartBody)))
            let comps = try Self.multipartTarget(dir, p)
            let uploadID = try Self.uploadID(p)
            let parts = try Self.uploadedParts(p)
            let location = "mlflow-artifacts:/" + comps.joined(separator: "/")
            try await requireUnsealedArtifacts(location)
            let size = try await repo.finishMultipartUpload(comps, uploadID: uploadID, parts: parts)
            let record = try await recordDigest(location, size: size, sha256: nil, method: "multipart")
            hashAfterCompletion(repo, comps, record: record)
            return Self.json(Self.empty)
        }
        route(.post, mpu + "/abort/{artifact_path...}", access: .experiment(.update, .artifactPath)) { [self] call in
            let (repo, dir) = try requireMultipart(call)
            let p = Params(source: .json(try await call.jsonBody(limit: 64 * 1024)))
            let comps = try Self.multipartTarget(dir, p)
            try await repo.cancelMultipartUpload(comps, uploadID: try Self.uploadID(p))
            return Self.json(Self.empty)
        }
        route(.get, "/api/2.0/mlflow-artifacts/presigned/{artifact_path...}", access: .experiment(.read, .artifactPath)) { [self] call in
            _ = try requireProxy()
            _ = try Self.components(call.rest)
            throw RepriseError(.notImplemented, "Multipart download is not supported for the current artifact repository")
        }
        route(.get, "/api/2.0/mlflow/artifacts/list", access: .experiment(.read, .run)) { [self] call in
            let p = try await call.params()
            let run = try await store.getRun(id: try p.runID())
            let relative = try p.string("path") ?? ""
            if Validation.pathComponents(relative).contains(where: Validation.isDotDot) { throw RepriseError.invalid("Invalid path") }
            return try await listUnder(rootURI: run.info.artifactURI, relative: relative)
        }
        route(.get, "/get-artifact", access: .experiment(.read, .run)) { [self] call in
            let p = try await call.params()
            let relative = try p.requiredString("path")
            _ = try Self.filePath(relative)
            let run = try await store.getRun(id: try p.runID())
            return try await downloadUnder(rootURI: run.info.artifactURI, relative: relative)
        }
        route(.post, "/api/2.0/mlflow/upload-artifact", access: .experiment(.update, .runInQuery)) { [self] call in
            let p = Params(source: .query(call.query))
            // What is missing is said before whether the run exists, in the reference's words.
            guard let runID = try? p.runID() else { throw RepriseError.invalid("Request must specify run_uuid.") }
            guard let relative = try p.string("path"), !relative.isEmpty else { throw RepriseError.invalid("Request must specify path.") }
            let rel = try Self.filePath(relative)
            let length = call.request.headers[.contentLength]
            if length == "0" || (length == nil && call.request.headers[.transferEncoding] == nil) {
                throw RepriseError.invalid("Request must specify data.")
            }
            let run = try await store.getRun(id: runID)
            let (repo, base) = try repository(for: run.info.artifactURI)
            let location = run.info.artifactURI + "/" + rel.joined(separator: "/")
            try await storeRecorded(repo, base + rel, location: location, body: call.request.body, limit: 10_000_000, method: "upload")
            return Self.json(Self.empty)
        }
        // What the server recorded for each artifact of a run as it was stored: `reprise artifacts
        // verify` downloads every file through the server and compares. The hashing is done by the
        // client, not here, on purpose: the check then covers the path a reader's bytes take (the
        // storage, the server's read and the transfer), and a large run never ties up one server
        // request for the whole re-read; each file is one ordinary, resumable download.
        route(.get, "\(Self.extensionPrefix)/artifact-digests", access: .experiment(.read, .run)) { [self] call in
            let p = try await call.params()
            let run = try await store.getRun(id: try p.runID())
            let root = digestLocation(run.info.artifactURI)
            let digests = try await store.artifactDigests(under: root)
            let files = digests.map { d -> JSONValue in
                guard case .object(var o) = d.json else { return d.json }
                o["path"] = .string(String(decoding: d.location.utf8.dropFirst(root.utf8.count + 1), as: UTF8.self))
                return .object(o)
            }
            return Self.json(["root_uri": .string(run.info.artifactURI), "files": .array(files)])
        }
    }
}
