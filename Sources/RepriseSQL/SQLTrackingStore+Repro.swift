import Foundation
import RepriseCore

extension SQLTrackingStore: ReproStore {
    static let policyColumnsRepro = "experiment_id, mode, required, refuse_dirty, refuse_duplicates, updated_time, updated_by"

    static func experimentPolicy(_ row: SQLRow) -> ExperimentPolicy {
        let required: [PassportField]
        if case .array(let items)? = try? JSONValue.parse(row.string(2)) {
            required = items.compactMap { $0.stringValue.flatMap(PassportField.init(rawValue:)) }
        } else {
            required = []
        }
        return ExperimentPolicy(
            experimentID: row.string(0), mode: PolicyMode(rawValue: row.string(1)) ?? .soft, required: required,
            refuseDirty: row.int(3) == 1, refuseDuplicates: row.int(4) == 1, updatedTime: row.int(5), updatedBy: row.string(6))
    }

    static func loadPolicy(_ db: any SQLConnection, experimentID: Int64) async throws -> ExperimentPolicy? {
        try await db.queryOne("SELECT \(policyColumnsRepro) FROM experiment_policies WHERE experiment_id = ?", [.int(experimentID)])
            .map(experimentPolicy)
    }

    static func runTags(_ db: any SQLConnection, _ runID: String) async throws -> [String: String] {
        var tags: [String: String] = [:]
        for row in try await db.query("SELECT key, value FROM tags WHERE run_uuid = ?", [.text(runID)]) { tags[row.string(0)] = row.string(1) }
        return tags
    }

    static func datasetCount(_ db: any SQLConnection, _ runID: String) async throws -> Int {
        Int(try await db.queryOne("SELECT COUNT(*) FROM run_inputs WHERE run_uuid = ?", [.text(runID)])?.int(0) ?? 0)
    }

    /// Judges a run against its experiment's policy inside a write: refuses it (strict, when
    /// `mayRefuse`) or records the outcome in `reprise.compliant` / `reprise.compliance.missing`.
    static func applyPolicy(
        _ db: any SQLConnection, runID: String, experimentID: Int64, tags: [String: String], datasets: Int, mayRefuse: Bool, when: String
    ) async throws {
        guard let policy = try await loadPolicy(db, experimentID: experimentID) else { return }
        try await applyPolicy(db, policy, runID: runID, tags: tags, datasets: datasets, mayRefuse: mayRefuse, when: when)
    }

    /// `applyPolicy` with the policy already read.
    /// - Returns: the verdict tags as they now stand (`reprise.compliance.missing` absent when nil).
    @discardableResult
    static func applyPolicy(
        _ db: any SQLConnection, _ policy: ExperimentPolicy, runID: String, tags: [String: String], datasets: Int, mayRefuse: Bool,
        when: String
    ) async throws -> (compliant: String, missing: String?) {
        let problems = policy.evaluate(tags: tags, datasets: datasets)
        if policy.mode == .strict, mayRefuse, !problems.isEmpty { throw policy.refusal(problems, when: when) }
        let compliant = problems.isEmpty ? "true" : "false"
        try await db.execute(upsertTagSQL, [.text(runID), .text(PassportTag.compliant), .text(compliant)])
        if problems.isEmpty {
            try await db.execute("DELETE FROM tags WHERE run_uuid = ? AND key = ?", [.text(runID), .text(PassportTag.complianceMissing)])
            return (compliant, nil)
        }
        let missing = problems.joined(separator: ", ")
        try await db.execute(upsertTagSQL, [.text(runID), .text(PassportTag.complianceMissing), .text(missing)])
        return (compliant, missing)
    }

    // MARK: - Policies

    public func setExperimentPolicy(_ policy: ExperimentPolicy) async throws -> ExperimentPolicy {
        let expID = try Validation.validateExperimentID(policy.experimentID)
        let actor = WriteContext.current.actor
        return try await write { db, audit in
            _ = try await Self.requireActiveExperiment(db, id: policy.experimentID)
            let now = Self.now()
            var p = policy
            p.updatedTime = now
            p.updatedBy = actor
            let before = try await Self.loadPolicy(db, experimentID: expID)
            try await db.execute(
                """
                INSERT INTO experiment_policies (\(Self.policyColumnsRepro)) VALUES (?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (experiment_id) DO UPDATE SET mode = excluded.mode, required = excluded.required,
                  refuse_dirty = excluded.refuse_dirty, refuse_duplicates = excluded.refuse_duplicates,
                  updated_time = excluded.updated_time, updated_by = excluded.updated_by
                """,
                [.int(expID), .text(p.mode.rawValue), .text(JSONValue.array(p.required.map { .string($0.rawValue) }).jsonString),
                 .int(p.refuseDirty ? 1 : 0), .int(p.refuseDuplicates ? 1 : 0), .int(now), .text(actor)])
            try await audit.record(
                db, "experiment.set_policy", "experiment", policy.experimentID,
                ["before": before?.json ?? .null, "after": p.json])
            return p
        }
    }

    public func experimentPolicy(experimentID: String) async throws -> ExperimentPolicy? {
        let expID = try Validation.validateExperimentID(experimentID)
        return try await read { db in
            _ = try await Self.loadExperiment(db, id: experimentID)
            return try await Self.loadPolicy(db, experimentID: expID)
        }
    }

    public func deleteExperimentPolicy(experimentID: String) async throws {
        let expID = try Validation.validateExperimentID(experimentID)
        try await write { db, audit in
            let n = try await db.execute("DELETE FROM experiment_policies WHERE experiment_id = ?", [.int(expID)])
            if n == 0 { throw RepriseError.notFound("Experiment \(experimentID) has no policy.") }
            try await audit.record(db, "experiment.delete_policy", "experiment", experimentID)
        }
    }

    // MARK: - Reproductions

    static let reproductionColumns = "id, original_run, rerun_run, verdict, summary, details, time, actor"

    static func reproduction(_ row: SQLRow) -> Reproduction {
        Reproduction(
            id: row.string(0), originalRunID: row.string(1), rerunRunID: row.string(2),
            verdict: ReproductionVerdict(rawValue: row.string(3)) ?? .incomplete, summary: row.string(4), details: row.string(5),
            time: row.int(6), actor: row.string(7))
    }

    public func recordReproduction(
        originalRunID: String, rerunRunID: String, verdict: ReproductionVerdict, summary: String, details: JSONValue
    ) async throws -> Reproduction {
        let actor = WriteContext.current.actor
        let id = Self.newID()
        return try await write { db, audit in
            guard try await db.queryOne("SELECT 1 FROM runs WHERE run_uuid = ?", [.text(originalRunID)]) != nil else {
                throw RepriseError.notFound("Run with id=\(originalRunID) not found")
            }
            if !rerunRunID.isEmpty {
                guard try await db.queryOne("SELECT 1 FROM runs WHERE run_uuid = ?", [.text(rerunRunID)]) != nil else {
                    throw RepriseError.notFound("Run with id=\(rerunRunID) not found")
                }
                if rerunRunID == originalRunID { throw RepriseError.invalid("A run cannot be its own reproduction.") }
            }
            let r = Reproduction(
                id: id, originalRunID: originalRunID, rerunRunID: rerunRunID, verdict: verdict,
                summary: Validation.truncated(summary, max: Validation.maxTagValueLength), details: details.jsonString, time: Self.now(),
                actor: actor)
            try await db.execute(
                "INSERT INTO reproductions (\(Self.reproductionColumns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [.text(r.id), .text(r.originalRunID), .text(r.rerunRunID), .text(r.verdict.rawValue), .text(r.summary), .text(r.details),
                 .int(r.time), .text(r.actor)])
            // The verdict is written on both runs even when the original is sealed: it is evidence about
            // the run, not a change to what the run recorded.
            for (run, tags) in [
                (originalRunID, [(PassportTag.verdict, r.verdict.rawValue), (PassportTag.verdictID, r.id),
                                 (PassportTag.verdictRerun, rerunRunID), (PassportTag.verdictSummary, r.summary)]),
                (rerunRunID, [(PassportTag.verdict, r.verdict.rawValue), (PassportTag.verdictID, r.id),
                              (PassportTag.verdictOf, originalRunID), (PassportTag.verdictSummary, r.summary)]),
            ] where !run.isEmpty {
                for (k, v) in tags where !v.isEmpty { try await db.execute(Self.upsertTagSQL, [.text(run), .text(k), .text(v)]) }
            }
            try await audit.record(
                db, "run.reproduction", "run", originalRunID,
                ["reproduction": .string(r.id), "rerun": .string(rerunRunID), "verdict": .string(r.verdict.rawValue)])
            return r
        }
    }

    public func reproductions(runID: String) async throws -> [Reproduction] {
        try await read { db in
            try await db.query(
                "SELECT \(Self.reproductionColumns) FROM reproductions WHERE original_run = ? OR rerun_run = ? ORDER BY time DESC, id",
                [.text(runID), .text(runID)]
            ).map(Self.reproduction)
        }
    }

    // MARK: - Lineage

    public func lineage(entity: String, depth: Int) async throws -> LineageGraph {
        guard let colon = entity.firstIndex(of: ":") else {
            throw RepriseError.invalid(
                "Invalid entity '\(entity)'. Use run:ID, dataset:DIGEST, logged_model:ID, model_version:NAME/N, alias:NAME@ALIAS, registered_model:NAME, deployment:ID or incident:ID.")
        }
        let type = String(entity[..<colon])
        let id = String(entity[entity.index(after: colon)...])
        let maxDepth = max(1, min(depth, 20))
        return try await read { db in
            var nodes: [String: LineageNode] = [:]
            var edges = Set<LineageEdge>()
            guard let root = try await Self.lineageNode(db, type: type, id: id) else {
                throw RepriseError.notFound("No \(type.replacingOccurrences(of: "_", with: " ")) '\(id)' exists.")
            }
            nodes[root.key] = root
            // Walk upstream (what it came from) and downstream (what came of it) from the root, never
            // sideways: the data of a production model does not pull in every other run on that data.
            // Parent/child runs and reproductions are shown one hop away, not followed.
            enum Way { case root, up, down }
            var frontier: [(LineageNode, Way)] = [(root, .root)]
            for _ in 0..<maxDepth where !frontier.isEmpty {
                var next: [(LineageNode, Way)] = []
                for (node, way) in frontier {
                    for (neighbour, edge) in try await Self.lineageNeighbours(db, node) {
                        let upstream = edge.to == node.key
                        if way == .up && !upstream || way == .down && upstream { continue }
                        edges.insert(edge)
                        if nodes[neighbour.key] == nil {
                            nodes[neighbour.key] = neighbour
                            if edge.relation != "parent_of" && edge.relation != "reproduces" {
                                next.append((neighbour, upstream ? .up : .down))
                            }
                        }
                    }
                }
                frontier = next
            }
            let ordered = nodes.values.sorted { ($0.type, $0.id) < ($1.type, $1.id) }
            return LineageGraph(
                root: root.key, nodes: ordered,
                edges: edges.filter { nodes[$0.from] != nil && nodes[$0.to] != nil }.sorted { ($0.from, $0.to, $0.relation) < ($1.from, $1.to, $1.relation) })
        }
    }

    static func lineageNode(_ db: any SQLConnection, type: String, id: String) async throws -> LineageNode? {
        switch type {
        case "run":
            guard let row = try await db.queryOne("SELECT name FROM runs WHERE run_uuid = ?", [.text(id)]) else { return nil }
            return LineageNode(type: "run", id: id, label: row.string(0))
        case "dataset":
            guard let row = try await db.queryOne("SELECT name FROM datasets WHERE digest = ? LIMIT 1", [.text(id)]) else { return nil }
            return LineageNode(type: "dataset", id: id, label: row.string(0))
        case "logged_model":
            guard let row = try await db.queryOne("SELECT name FROM logged_models WHERE model_id = ?", [.text(id)]) else { return nil }
            return LineageNode(type: "logged_model", id: id, label: row.string(0))
        case "model_version":
            guard let slash = id.lastIndex(of: "/"), let v = Int64(id[id.index(after: slash)...]) else { return nil }
            let name = String(id[..<slash])
            guard try await db.queryOne("SELECT 1 FROM model_versions WHERE name = ? AND version = ?", [.text(name), .int(v)]) != nil
            else { return nil }
            return LineageNode(type: "model_version", id: id, label: "\(name) v\(v)")
        case "alias":
            guard let at = id.lastIndex(of: "@") else { return nil }
            let name = String(id[..<at])
            let alias = String(id[id.index(after: at)...])
            guard try await db.queryOne("SELECT 1 FROM registered_model_aliases WHERE name = ? AND alias = ?", [.text(name), .text(alias)]) != nil
            else { return nil }
            return LineageNode(type: "alias", id: id, label: "\(name)@\(alias)")
        case "registered_model":
            guard try await db.queryOne("SELECT 1 FROM registered_models WHERE name = ?", [.text(id)]) != nil else { return nil }
            return LineageNode(type: "registered_model", id: id, label: id)
        case "deployment":
            guard let row = try await db.queryOne(
                "SELECT environment, model_name, model_version FROM deployments WHERE id = ?", [.text(id)]) else { return nil }
            return LineageNode(type: "deployment", id: id, label: "\(row.string(0)): \(row.string(1)) v\(row.int(2))")
        case "incident":
            guard let row = try await db.queryOne("SELECT note, status FROM incidents WHERE id = ?", [.text(id)]) else { return nil }
            let note = row.string(0)
            return LineageNode(type: "incident", id: id, label: "\(row.string(1)): \(note.count > 60 ? note.prefix(57) + "..." : note)")
        default:
            throw RepriseError.invalid(
                "Invalid entity type '\(type)'. Use run, dataset, logged_model, model_version, alias, registered_model, deployment or incident.")
        }
    }

    /// Edges point the way things flow: data → run → logged model → model version ← alias.
    static func lineageNeighbours(_ db: any SQLConnection, _ node: LineageNode) async throws -> [(LineageNode, LineageEdge)] {
        var out: [(LineageNode, LineageEdge)] = []
        func run(_ id: String) async throws -> LineageNode? { try await lineageNode(db, type: "run", id: id) }
        switch node.type {
        case "run":
            for row in try await db.query(
                "SELECT DISTINCT d.digest, d.name FROM run_inputs i JOIN datasets d ON d.dataset_uuid = i.dataset_uuid WHERE i.run_uuid = ?",
                [.text(node.id)])
            {
                let d = LineageNode(type: "dataset", id: row.string(0), label: row.string(1))
                out.append((d, LineageEdge(from: d.key, to: node.key, relation: "input_of")))
            }
            for row in try await db.query(
                "SELECT model_id, name FROM logged_models WHERE source_run_id = ? UNION SELECT o.model_id, m.name FROM run_model_outputs o JOIN logged_models m ON m.model_id = o.model_id WHERE o.run_uuid = ?",
                [.text(node.id), .text(node.id)])
            {
                let m = LineageNode(type: "logged_model", id: row.string(0), label: row.string(1))
                out.append((m, LineageEdge(from: node.key, to: m.key, relation: "produced")))
            }
            for row in try await db.query("SELECT name, version FROM model_versions WHERE run_id = ?", [.text(node.id)]) {
                let v = LineageNode(type: "model_version", id: "\(row.string(0))/\(row.int(1))", label: "\(row.string(0)) v\(row.int(1))")
                out.append((v, LineageEdge(from: node.key, to: v.key, relation: "registered_as")))
            }
            // Prompt versions loaded (or evaluated) in the run.
            if let row = try await db.queryOne("SELECT value FROM tags WHERE run_uuid = ? AND key = ?", [.text(node.id), .text(linkedPromptsKey)]),
                case .array(let items)? = try? JSONValue.parse(row.string(0))
            {
                for item in items {
                    guard let name = item["name"]?.stringValue, let version = item["version"]?.stringValue ?? item["version"]?.jsonString,
                        let v = try await lineageNode(db, type: "model_version", id: "\(name)/\(version)")
                    else { continue }
                    out.append((v, LineageEdge(from: v.key, to: node.key, relation: "prompt_of")))
                }
            }
            if let parent = try await db.queryOne("SELECT value FROM tags WHERE run_uuid = ? AND key = 'mlflow.parentRunId'", [.text(node.id)]),
                let p = try await run(parent.string(0))
            {
                out.append((p, LineageEdge(from: p.key, to: node.key, relation: "parent_of")))
            }
            for row in try await db.query("SELECT run_uuid FROM tags WHERE key = 'mlflow.parentRunId' AND value = ?", [.text(node.id)]) {
                if let c = try await run(row.string(0)) { out.append((c, LineageEdge(from: node.key, to: c.key, relation: "parent_of"))) }
            }
            for row in try await db.query(
                "SELECT original_run, rerun_run FROM reproductions WHERE (original_run = ? OR rerun_run = ?) AND rerun_run <> ''",
                [.text(node.id), .text(node.id)])
            {
                let other = row.string(0) == node.id ? row.string(1) : row.string(0)
                if let o = try await run(other) {
                    let (orig, rerun) = row.string(0) == node.id ? (node, o) : (o, node)
                    out.append((o, LineageEdge(from: rerun.key, to: orig.key, relation: "reproduces")))
                }
            }
        case "dataset":
            for row in try await db.query(
                "SELECT DISTINCT i.run_uuid, r.name FROM datasets d JOIN run_inputs i ON i.dataset_uuid = d.dataset_uuid JOIN runs r ON r.run_uuid = i.run_uuid WHERE d.digest = ?",
                [.text(node.id)])
            {
                let r = LineageNode(type: "run", id: row.string(0), label: row.string(1))
                out.append((r, LineageEdge(from: node.key, to: r.key, relation: "input_of")))
            }
        case "logged_model":
            if let row = try await db.queryOne("SELECT source_run_id FROM logged_models WHERE model_id = ?", [.text(node.id)]),
                let r = try await run(row.string(0))
            {
                out.append((r, LineageEdge(from: r.key, to: node.key, relation: "produced")))
            }
            for row in try await db.query("SELECT name, version FROM model_versions WHERE model_id = ?", [.text(node.id)]) {
                let v = LineageNode(type: "model_version", id: "\(row.string(0))/\(row.int(1))", label: "\(row.string(0)) v\(row.int(1))")
                out.append((v, LineageEdge(from: node.key, to: v.key, relation: "registered_as")))
            }
        case "model_version":
            let slash = node.id.lastIndex(of: "/")!
            let name = String(node.id[..<slash])
            let version = Int64(node.id[node.id.index(after: slash)...]) ?? 0
            if let row = try await db.queryOne("SELECT run_id, model_id FROM model_versions WHERE name = ? AND version = ?", [.text(name), .int(version)]) {
                if !row.string(1).isEmpty, let m = try await lineageNode(db, type: "logged_model", id: row.string(1)) {
                    out.append((m, LineageEdge(from: m.key, to: node.key, relation: "registered_as")))
                }
                if let r = try await run(row.string(0)) { out.append((r, LineageEdge(from: r.key, to: node.key, relation: "registered_as"))) }
            }
            for row in try await db.query("SELECT alias FROM registered_model_aliases WHERE name = ? AND version = ?", [.text(name), .int(version)]) {
                let a = LineageNode(type: "alias", id: "\(name)@\(row.string(0))", label: "\(name)@\(row.string(0))")
                out.append((a, LineageEdge(from: node.key, to: a.key, relation: "aliased_as")))
            }
            let m = LineageNode(type: "registered_model", id: name, label: name)
            out.append((m, LineageEdge(from: node.key, to: m.key, relation: "version_of")))
            // Runs a prompt version was loaded or evaluated in.
            for runID in try await evaluationRuns(db, model: name, version: version) {
                if let r = try await run(runID) { out.append((r, LineageEdge(from: node.key, to: r.key, relation: "prompt_of"))) }
            }
            // Deployments of this version, as the model or as one of its prompts.
            for row in try await db.query(
                "SELECT id, environment FROM deployments WHERE model_name = ? AND model_version = ? UNION SELECT d.id, d.environment FROM deployment_prompts p JOIN deployments d ON d.id = p.deployment_id WHERE p.name = ? AND p.version = ?",
                [.text(name), .int(version), .text(name), .int(version)])
            {
                if let d = try await lineageNode(db, type: "deployment", id: row.string(0)) {
                    out.append((d, LineageEdge(from: node.key, to: d.key, relation: "deployed_as")))
                }
            }
        case "deployment":
            if let row = try await db.queryOne("SELECT model_name, model_version FROM deployments WHERE id = ?", [.text(node.id)]) {
                let v = LineageNode(type: "model_version", id: "\(row.string(0))/\(row.int(1))", label: "\(row.string(0)) v\(row.int(1))")
                out.append((v, LineageEdge(from: v.key, to: node.key, relation: "deployed_as")))
            }
            for row in try await db.query("SELECT name, version FROM deployment_prompts WHERE deployment_id = ? ORDER BY name", [.text(node.id)]) {
                let v = LineageNode(type: "model_version", id: "\(row.string(0))/\(row.int(1))", label: "\(row.string(0)) v\(row.int(1))")
                out.append((v, LineageEdge(from: v.key, to: node.key, relation: "deployed_as")))
            }
            for row in try await db.query("SELECT id FROM incidents WHERE deployment_id = ? ORDER BY opened_time", [.text(node.id)]) {
                if let i = try await lineageNode(db, type: "incident", id: row.string(0)) {
                    out.append((i, LineageEdge(from: node.key, to: i.key, relation: "incident_of")))
                }
            }
        case "incident":
            if let row = try await db.queryOne("SELECT deployment_id FROM incidents WHERE id = ?", [.text(node.id)]),
                let d = try await lineageNode(db, type: "deployment", id: row.string(0))
            {
                out.append((d, LineageEdge(from: d.key, to: node.key, relation: "incident_of")))
            }
        case "alias":
            let at = node.id.lastIndex(of: "@")!
            let name = String(node.id[..<at])
            if let row = try await db.queryOne(
                "SELECT version FROM registered_model_aliases WHERE name = ? AND alias = ?", [.text(name), .text(String(node.id[node.id.index(after: at)...]))])
            {
                let v = LineageNode(type: "model_version", id: "\(name)/\(row.int(0))", label: "\(name) v\(row.int(0))")
                out.append((v, LineageEdge(from: v.key, to: node.key, relation: "aliased_as")))
            }
        case "registered_model":
            for row in try await db.query("SELECT version FROM model_versions WHERE name = ? ORDER BY version", [.text(node.id)]) {
                let v = LineageNode(type: "model_version", id: "\(node.id)/\(row.int(0))", label: "\(node.id) v\(row.int(0))")
                out.append((v, LineageEdge(from: v.key, to: node.key, relation: "version_of")))
            }
        default:
            break
        }
        return out
    }
}
