import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import RepriseArtifacts
import RepriseCore

/// Request bytes, failing once more than `limit` bytes have arrived.
struct LimitedBody<Base: AsyncSequence & Sendable>: AsyncSequence, Sendable where Base.Element == ByteBuffer {
    typealias Element = ByteBuffer
    let base: Base
    let limit: Int64

    struct AsyncIterator: AsyncIteratorProtocol {
        var inner: Base.AsyncIterator
        let limit: Int64
        var seen: Int64 = 0
        mutating func next() async throws -> ByteBuffer? {
            guard let chunk = try await inner.next() else { return nil }
            seen += Int64(chunk.readableBytes)
            if seen > limit {
                throw RepriseError.invalid("The upload is larger than the limit of \(limit) bytes.")
            }
            return chunk
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(inner: base.makeAsyncIterator(), limit: limit) }
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
        if rootURI.hasPrefix("mlflow-artifacts:") {
            var rest = rootURI.dropFirst("mlflow-artifacts:".count)
            if rest.hasPrefix("//") {  // mlflow-artifacts://host:port/path
                rest = rest.dropFirst(2)
                rest = rest.firstIndex(of: "/").map { rest[$0...] } ?? ""
            }
            let relative = Validation.percentDecode(rest) ?? String(rest)
            return (try requireProxy(), try Validation.artifactPathComponents(String(relative.drop(while: { $0 == "/" }))))
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
        guard path.hasPrefix("/") else {
            throw RepriseError(.notImplemented, "Artifact location '\(rootURI)' is not served by this server.")
        }
        guard let decoded = Validation.percentDecode(path) else { throw RepriseError.invalid("Invalid artifact location '\(rootURI)'") }
        let normalized = Validation.normpath(decoded)
        for repo in localRepositories {
            let root = repo.root
            if normalized == root || normalized.hasPrefix(root == "/" ? "/" : root + "/") {
                let relative = String(normalized.dropFirst(root.count)).drop(while: { $0 == "/" })
                return (repo, try Validation.artifactPathComponents(String(relative)))
            }
        }
        throw RepriseError(
            .permissionDenied,
            "Artifact location '\(rootURI)' is outside this server's artifact roots (--artifacts-destination, a local --default-artifact-root), so the server does not open it. Read those artifacts from their storage directly."
        )
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
        let (repo, base) = try repository(for: rootURI)
        let rel = try Validation.artifactPathComponents(relative)
        guard !rel.isEmpty else { throw RepriseError.invalid("Invalid path") }
        return try await download(repo, base + rel, displayPath: relative)
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

    func registerArtifacts() {
        let store = self.store
        let maxArtifact = config.maxArtifactBytes
        route(.put, Self.proxyPrefix + "/{artifact_path...}", access: .experiment(.update, .artifactPath)) { [self] call in
            let repo = try requireProxy()
            let comps = try Self.components(call.rest)
            guard !comps.isEmpty else { throw RepriseError.invalid("Invalid path") }
            let location = "mlflow-artifacts:/" + comps.joined(separator: "/")
            try await requireUnsealedArtifacts(location)
            _ = try await repo.write(comps, contents: LimitedBody(base: call.request.body, limit: maxArtifact)) {
                try await self.requireUnsealedArtifacts(location)  // sealed while the body arrived?
            }
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
            try await requireUnsealedArtifacts("mlflow-artifacts:/" + comps.joined(separator: "/"))
            try await repo.delete(comps)
            return Self.json(Self.empty)
        }
        route(.get, Self.proxyPrefix, access: .experiment(.read, .artifactListPath)) { [self] call in
            let repo = try requireProxy()
            let comps = try Validation.artifactPathComponents(call.query["path"]?.first ?? "")
            guard let entries = try await repo.list(comps) else { return Self.json(Self.empty) }
            if entries.isEmpty { return Self.json(Self.empty) }
            return Self.json(["files": .array(entries.map(\.json))])
        }
        for op in ["create", "complete", "abort"] {
            route(.post, "/api/2.0/mlflow-artifacts/mpu/\(op)/{artifact_path...}", access: .experiment(.update, .artifactPath)) { [self] call in
                _ = try requireProxy()
                _ = try Self.components(call.rest)
                throw RepriseError(.notImplemented, "Multipart upload is not supported for the current artifact repository")
            }
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
            if relative.split(separator: "/").contains("..") { throw RepriseError.invalid("Invalid path") }
            return try await listUnder(rootURI: run.info.artifactURI, relative: relative)
        }
        route(.get, "/get-artifact", access: .experiment(.read, .run)) { [self] call in
            let p = try await call.params()
            let run = try await store.getRun(id: try p.runID())
            return try await downloadUnder(rootURI: run.info.artifactURI, relative: try p.requiredString("path"))
        }
        route(.post, "/api/2.0/mlflow/upload-artifact", access: .experiment(.update, .runInQuery)) { [self] call in
            let p = Params(source: .query(call.query))
            let run = try await store.getRun(id: try p.runID())
            let relative = try p.requiredString("path")
            let (repo, base) = try repository(for: run.info.artifactURI)
            let rel = try Validation.artifactPathComponents(relative)
            guard !rel.isEmpty else { throw RepriseError.invalid("Invalid path") }
            let location = run.info.artifactURI + "/" + rel.joined(separator: "/")
            try await requireUnsealedArtifacts(location)
            _ = try await repo.write(base + rel, contents: LimitedBody(base: call.request.body, limit: 10_000_000)) {
                try await self.requireUnsealedArtifacts(location)
            }
            return Self.json(Self.empty)
        }
    }
}
