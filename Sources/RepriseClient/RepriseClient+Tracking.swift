import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import RepriseCore

/// The tracking calls the `reprise` commands need, on top of `call`.
extension RepriseClient {
    /// The id of the experiment called `name`; created when `create` and it does not exist.
    public func experimentID(named name: String, create: Bool) async throws -> String {
        do {
            let r = try await call(.GET, "/api/2.0/mlflow/experiments/get-by-name", query: [("experiment_name", name)])
            guard let id = r["experiment"]?["experiment_id"]?.stringValue else { throw RepriseClientError.malformed("experiment_id") }
            return id
        } catch let e as RepriseError where e.code == .resourceDoesNotExist && create {
            return try await createExperiment(name: name)
        }
    }

    /// Creates a run; returns its id and artifact URI.
    /// - Parameter userID: who runs it (`user_id`, as the mlflow client sends it beside the `mlflow.user` tag).
    public func createRun(experimentID: String, runName: String?, startTime: Int64, tags: [KeyValue], userID: String? = nil) async throws
        -> (runID: String, artifactURI: String)
    {
        var body = JSONObject([
            ("experiment_id", .string(experimentID)), ("start_time", .int(startTime)), ("tags", .array(tags.map(\.json))),
        ])
        if let userID, !userID.isEmpty { body["user_id"] = .string(userID) }
        if let runName { body["run_name"] = .string(runName) }
        let r = try await call(.POST, "/api/2.0/mlflow/runs/create", body: .object(body))
        guard let id = r["run"]?["info"]?["run_id"]?.stringValue, let uri = r["run"]?["info"]?["artifact_uri"]?.stringValue else {
            throw RepriseClientError.malformed("run_id")
        }
        return (id, uri)
    }

    public func logBatch(runID: String, metrics: [Metric] = [], params: [KeyValue] = [], tags: [KeyValue] = []) async throws {
        var body = JSONObject([("run_id", .string(runID))])
        if !metrics.isEmpty {
            body["metrics"] = .array(metrics.map { ["key": .string($0.key), "value": .double($0.value), "timestamp": .int($0.timestamp), "step": .int($0.step)] })
        }
        if !params.isEmpty { body["params"] = .array(params.map(\.json)) }
        if !tags.isEmpty { body["tags"] = .array(tags.map(\.json)) }
        try await call(.POST, "/api/2.0/mlflow/runs/log-batch", body: .object(body))
    }

    public func logInputs(runID: String, datasets: [JSONValue]) async throws {
        try await call(.POST, "/api/2.0/mlflow/runs/log-inputs", body: ["run_id": .string(runID), "datasets": .array(datasets)])
    }

    public func updateRun(runID: String, status: RunStatus, endTime: Int64) async throws {
        try await call(
            .POST, "/api/2.0/mlflow/runs/update",
            body: ["run_id": .string(runID), "status": .string(status.rawValue), "end_time": .int(endTime)])
    }

    /// Runs matching `filter` (one page), newest first unless `orderBy` says otherwise.
    public func searchRuns(experimentIDs: [String], filter: String, maxResults: Int = 100, orderBy: String = "attributes.start_time DESC")
        async throws -> [Run]
    {
        let r = try await call(
            .POST, "/api/2.0/mlflow/runs/search",
            body: [
                "experiment_ids": .array(experimentIDs.map(JSONValue.string)), "filter": .string(filter),
                "max_results": .int(Int64(maxResults)), "order_by": [.string(orderBy)],
            ])
        return try r.wireArray("runs").map(Run.init(wire:))
    }

    /// The proxy path for `relative` under a run's artifact URI, or nil when the URI is not served by
    /// the tracking server (then it is a local path, returned second).
    static func artifactLocation(_ artifactURI: String, _ relative: String) -> (proxyPath: String?, localPath: String?) {
        let rel = Validation.pathComponents(relative).map(encode).joined(separator: "/")
        if let rest = ArtifactURI.proxyPath(artifactURI) {
            let base = Validation.pathComponents(rest).map(encode).joined(separator: "/")
            return ("/api/2.0/mlflow-artifacts/artifacts/\(base)/\(rel)", nil)
        }
        var local = artifactURI
        if local.hasPrefix("file://") { local = String(local.dropFirst("file://".count)) }
        return (nil, local + "/" + relative)
    }

    /// Stores `data` as the artifact `relative` of the run whose artifact root is `artifactURI`.
    public func uploadArtifact(artifactURI: String, relative: String, data: Data) async throws {
        let (proxy, local) = Self.artifactLocation(artifactURI, relative)
        if let local {
            try FileManager.default.createDirectory(
                atPath: (local as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try data.write(to: URL(fileURLWithPath: local), options: .atomic)
            return
        }
        var request = HTTPClientRequest(url: baseURL + proxy!)
        request.method = .PUT
        request.headers.add(name: "Content-Type", value: "application/octet-stream")
        request.body = .bytes(ByteBuffer(bytes: data))
        let response = try await send(request)
        let body = try await response.body.collect(upTo: 1 << 20)
        guard (200..<300).contains(Int(response.status.code)) else {
            throw failure(status: Int(response.status.code), method: .PUT, path: proxy!, text: String(buffer: body))
        }
    }

    /// The bytes of artifact `relative`, or nil when it does not exist.
    public func downloadArtifact(artifactURI: String, relative: String) async throws -> Data? {
        let (proxy, local) = Self.artifactLocation(artifactURI, relative)
        if let local { return FileManager.default.contents(atPath: local) }
        var request = HTTPClientRequest(url: baseURL + proxy!)
        request.method = .GET
        let response = try await send(request)
        let body = try await response.body.collect(upTo: 4 << 30)
        if response.status == .notFound { return nil }
        guard (200..<300).contains(Int(response.status.code)) else {
            throw failure(status: Int(response.status.code), method: .GET, path: proxy!, text: String(buffer: body))
        }
        return Data(body.readableBytesView)
    }
}

extension RepriseClient {
    /// What the server recorded for each artifact of a run as it was stored
    /// (`GET /api/reprise/v1/artifact-digests`): `{root_uri, files: [{path, size, sha256?, method, …}]}`.
    public func artifactDigests(runID: String) async throws -> JSONValue {
        try await call(.GET, "/api/reprise/v1/artifact-digests", query: [("run_id", runID)])
    }

    /// Every file under a run's artifact root, with its size, read through the server
    /// (`/api/2.0/mlflow/artifacts/list`, folder by folder).
    /// - Parameter limit: refuse runs with more entries than this.
    public func listRunArtifacts(runID: String, limit: Int = 1_000_000) async throws -> [(path: String, size: Int64?)] {
        var files: [(String, Int64?)] = []
        var folders = [""]
        var seen = 0
        while let folder = folders.popLast() {
            var query = [("run_id", runID)]
            if !folder.isEmpty { query.append(("path", folder)) }
            let r = try await call(.GET, "/api/2.0/mlflow/artifacts/list", query: query)
            guard case .array(let entries)? = r["files"] else { continue }
            for e in entries {
                guard let path = e["path"]?.stringValue else { continue }
                seen += 1
                guard seen <= limit else { throw RepriseClientError.status(0, "The run has more than \(limit) artifacts.") }
                if e["is_dir"] == .bool(true) {
                    folders.append(path)
                } else if case .int(let size)? = e["file_size"] {
                    files.append((path, size))
                } else {
                    files.append((path, nil))
                }
            }
        }
        return files.sorted { $0.0 < $1.0 }
    }

    /// Streams the run's artifact `path` through the server (`/get-artifact`) to `consume`, chunk
    /// by chunk. Returns false when the server has no such file (404).
    public func readRunArtifact(runID: String, path: String, consume: (ByteBuffer) async throws -> Void) async throws -> Bool {
        let url = baseURL + "/get-artifact?run_id=\(Self.encode(runID))&path=\(Self.encode(path))"
        var request = HTTPClientRequest(url: url)
        request.method = .GET
        let response = try await send(request)
        guard (200..<300).contains(Int(response.status.code)) else {
            let body = (try? await response.body.collect(upTo: 1 << 20)) ?? ByteBuffer()
            let error = failure(status: Int(response.status.code), method: .GET, path: "/get-artifact", text: String(buffer: body))
            if let e = error as? RepriseError, e.code == .resourceDoesNotExist { return false }
            throw error
        }
        try await streamBody(response, consume)
        return true
    }
}

extension RepriseClient {
    /// Streams the proxied artifact at `path` to `consume`, chunk by chunk
    /// (`GET /api/2.0/mlflow-artifacts/artifacts/<path>`).
    public func readProxiedArtifact(path: String, consume: (ByteBuffer) async throws -> Void) async throws {
        let encoded = Validation.pathComponents(path).map(Self.encode).joined(separator: "/")
        var request = HTTPClientRequest(url: baseURL + "/api/2.0/mlflow-artifacts/artifacts/" + encoded)
        request.method = .GET
        let response = try await send(request)
        guard (200..<300).contains(Int(response.status.code)) else {
            let body = (try? await response.body.collect(upTo: 1 << 20)) ?? ByteBuffer()
            throw failure(status: Int(response.status.code), method: .GET, path: "/api/2.0/mlflow-artifacts/artifacts", text: String(buffer: body))
        }
        try await streamBody(response, consume)
    }
}

extension RepriseClient {
    /// Hands a successful answer's body to `consume` chunk by chunk; the connection failing half-way
    /// is `unreachable`.
    func streamBody(_ response: HTTPClientResponse, _ consume: (ByteBuffer) async throws -> Void) async throws {
        do {
            for try await chunk in response.body { try await consume(chunk) }
        } catch let e as RepriseError {
            throw e
        } catch {
            throw RepriseClientError.unreachable(url: baseURL, underlying: "\(error)")
        }
    }
}
