import Crypto
import RepriseCore

/// Appends audit events inside the transaction of the write they describe, so an event exists
/// exactly when its change does.
struct Auditor: Sendable {
    let context: WriteContext
    let key: AuditKey
    /// The context's `auth` record, built once per request rather than per event inside the
    /// (serialised) write.
    let authRecord: String

    init(context: WriteContext, key: AuditKey) {
        self.context = context
        self.key = key
        self.authRecord = context.authRecord
    }

    static func sha256Hex(_ bytes: [UInt8]) -> String { Hex.encode(SHA256.hash(data: bytes)) }

    /// Appends one event chained to the last one.
    /// - Parameters:
    ///   - action: what happened, e.g. `run.log_batch`, `alias.move`.
    ///   - entityType: `experiment`, `run`, `logged_model`, `registered_model`, `model_version`, `alias`, `approval_request`, `alias_policy`.
    ///   - entityID: the entity's id (`name/version` for versions, `name@alias` for aliases).
    ///   - summary: a compact before/after description.
    func record(
        _ db: any SQLConnection, _ action: String, _ entityType: String, _ entityID: String, _ summary: JSONValue = [:]
    ) async throws {
        // The chain's head: remembered from the previous body of this batch when there was one
        // (nothing else can append meanwhile), read otherwise.
        let head: (seq: Int64, hash: String)
        if let known = db.memo?.auditHead {
            head = known
        } else if let last = try await db.queryOne("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1", []) {
            head = (last.int(0), last.string(1))
        } else {
            head = (0, "")
        }
        var event = AuditEvent(
            seq: head.seq + 1, time: SQLTrackingStore.now(), actor: context.actor,
            authenticated: context.authenticated, action: action, entityType: entityType, entityID: entityID,
            summary: summary.jsonString, requestID: context.requestID, prevHash: head.hash, hash: "",
            auth: authRecord)
        event.hash = key.eventHash(event)
        let row: [SQLValue] = [
            .int(event.seq), .int(event.time), .text(event.actor), .int(event.authenticated ? 1 : 0), .text(event.action),
            .text(event.entityType), .text(event.entityID), .text(event.summary), .text(event.requestID),
            .text(event.prevHash), .text(event.hash), .text(event.auth),
        ]
        // Refused here, so a value the database cannot store fails this body alone rather than the
        // batch's flush, which would fail every body committed with it (PostgreSQL text cannot hold
        // NUL; the summary is JSON, which escapes it).
        for case .text(let text) in row { try SQLDriverError.refuseUnstorable(text) }
        if let memo = db.memo {
            // Inserted with the batch's other events just before it commits (`WriteMemo.flush`).
            memo.pendingAudit.append(row)
            memo.auditHead = (event.seq, event.hash)
        } else {
            try await WriteMemo.insertAudit([row], db)
        }
    }
}

extension SQLTrackingStore {
    /// A write whose body records its audit event(s) through the given auditor.
    ///
    /// The one place the store runs write bodies: a body refused for a transient reason (a
    /// concurrent writer took the same key, a serialization failure, a busy database) runs again,
    /// a few times with a short backoff, so its own checks see the winner's row and answer as they
    /// would have (RESOURCE_ALREADY_EXISTS, …). What is still refused after that becomes MLflow's
    /// envelope, never a 500.
    @discardableResult
    func write<T: Sendable>(_ body: @escaping @Sendable (any SQLConnection, Auditor) async throws -> T) async throws -> T {
        let auditor = Auditor(context: WriteContext.current, key: auditKey)
        var attempt = 0
        let start = ContinuousClock.now
        defer { StoreMetrics.writes.recordNanoseconds((ContinuousClock.now - start).nanoseconds) }
        while true {
            do {
                return try await driver.write { db in try await body(db, auditor) }
            } catch let e as SQLDriverError where e.isTransient && attempt < Self.writeAttempts - 1 {
                attempt += 1
                try await Task.sleep(for: .milliseconds(Int.random(in: 1...(5 << attempt))))
            } catch let e as SQLDriverError {
                throw Self.refusal(e)
            }
        }
    }

    /// How many times a write body runs before a transient refusal is reported.
    static let writeAttempts = 5

    /// MLflow's answer for a refusal the retries did not get past.
    static func refusal(_ e: SQLDriverError) -> RepriseError {
        switch e {
        case .uniqueViolation:
            return RepriseError(.resourceAlreadyExists, "A concurrent request created the same resource; it already exists.")
        case .serializationFailure, .busy:
            return RepriseError(.temporarilyUnavailable, "The database is busy with concurrent writes; retry the request.")
        case .closed:
            return RepriseError(.temporarilyUnavailable, "The server is shutting down; retry the request against another server.")
        case .invalidValue(let message):
            return RepriseError.invalid(message)
        }
    }

    /// A read on one snapshot, with driver refusals as MLflow's envelope.
    func read<T: Sendable>(_ body: @escaping @Sendable (any SQLConnection) async throws -> T) async throws -> T {
        let start = ContinuousClock.now
        defer { StoreMetrics.reads.recordNanoseconds((ContinuousClock.now - start).nanoseconds) }
        do {
            return try await driver.read(body)
        } catch let e as SQLDriverError {
            throw Self.refusal(e)
        }
    }

    static func auditEvent(_ row: SQLRow) -> AuditEvent {
        AuditEvent(
            seq: row.int(0), time: row.int(1), actor: row.string(2), authenticated: row.int(3) == 1, action: row.string(4),
            entityType: row.string(5), entityID: row.string(6), summary: row.string(7), requestID: row.string(8),
            prevHash: row.string(9), hash: row.string(10), auth: row.string(11))
    }

    static let auditColumns = WriteMemo.auditColumns

    public func auditEvents(entityType: String?, entityID: String?, afterSeq: Int64, limit: Int) async throws -> [AuditEvent] {
        // With an entity, `+seq` keeps the planner on the entity index (SQLite would otherwise walk
        // every event in seq order for the ORDER BY); the matches are sorted after.
        let hasEntity = !(entityID ?? "").isEmpty
        var sql = "SELECT \(Self.auditColumns) FROM audit_events WHERE \(hasEntity ? "+seq" : "seq") > ?"
        var binds: [SQLValue] = [.int(afterSeq)]
        if let entityType, !entityType.isEmpty {
            sql += " AND entity_type = ?"
            binds.append(.text(entityType))
        }
        if let entityID, !entityID.isEmpty {
            // A model's events include its versions (`name/N`) and aliases (`name@alias`): the ids
            // starting `name/` sort from `name/` up to `name0`, those starting `name@` from `name@` up
            // to `nameA` (bytewise: SQLite's BINARY, PostgreSQL's "C"), so each is an index range.
            sql += " AND (entity_id = ? OR (entity_id >= ? AND entity_id < ?) OR (entity_id >= ? AND entity_id < ?))"
            binds += [.text(entityID), .text(entityID + "/"), .text(entityID + "0"), .text(entityID + "@"), .text(entityID + "A")]
        }
        sql += " ORDER BY seq LIMIT ?"
        binds.append(.int(Int64(max(1, min(limit, 100_000)))))
        let finalSQL = sql
        let finalBinds = binds
        return try await read { db in try await db.query(finalSQL, finalBinds).map(Self.auditEvent) }
    }

    static let chainFormat = "hmac-sha256-v1"

    /// Moves a chain written before the chain was keyed (plain SHA-256) to HMAC-SHA256 under the
    /// server secret, once, after checking it link by link. A chain that does not verify is left as
    /// it is, so `verify` goes on reporting where it breaks.
    func upgradeAuditChain() async throws {
        let key = auditKey
        // Once a keyed chain has been checkpointed outside the database, an unkeyed chain is never
        // re-keyed: someone who edited the database could otherwise delete the marker row below and
        // have a recomputed plain chain laundered into a keyed one.
        if key.readCheckpoints().contains(where: { $0 != nil }) { return }
        try await write { db, _ in
            if try await db.queryOne("SELECT value FROM reprise_meta WHERE key = 'audit_chain'", [])?.string(0) != nil { return }
            // It reads the whole chain from the table: events other bodies of this batch have
            // recorded are not there yet. It runs at start-up, alone; should it ever share a batch,
            // it waits for another (a transient refusal, run again by the store).
            if let memo = db.memo, !memo.pendingAudit.isEmpty {
                throw SQLDriverError.busy("the audit chain's upgrade waits for a batch of its own")
            }
            var prev = ""
            var plainPrev = ""
            var rewritten: [(Int64, String, String)] = []
            var expected: Int64 = 1
            for row in try await db.query("SELECT \(Self.auditColumns) FROM audit_events ORDER BY seq", []) {
                var e = Self.auditEvent(row)
                guard e.seq == expected, e.prevHash == plainPrev, Auditor.sha256Hex(e.canonicalBytes) == e.hash else { return }
                plainPrev = e.hash
                e.prevHash = prev
                let h = key.eventHash(e)
                rewritten.append((e.seq, prev, h))
                prev = h
                expected += 1
            }
            for (seq, p, h) in rewritten {
                try await db.execute("UPDATE audit_events SET prev_hash = ?, hash = ? WHERE seq = ?", [.text(p), .text(h), .int(seq)])
            }
            db.memo?.forgetHead()  // the head's hash changed
            try await db.execute("INSERT INTO reprise_meta (key, value) VALUES ('audit_chain', ?)", [.text(Self.chainFormat)])
        }
    }

    /// The chain's head (last event), if any.
    public func auditHead() async throws -> (seq: Int64, hash: String)? {
        try await read { db in
            try await db.queryOne("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1", []).map { ($0.int(0), $0.string(1)) }
        }
    }

    /// A signed checkpoint of the current head, also appended to the checkpoint file when it moved
    /// since the last one written by this process.
    @discardableResult
    public func checkpointAudit() async throws -> AuditCheckpoint? {
        guard let head = try await auditHead() else { return nil }
        let c = auditKey.checkpoint(seq: head.seq, hash: head.hash, time: Self.now())
        let last = auditKey.readCheckpoints().last.flatMap { $0 }
        if last?.seq != c.seq || last?.hash != c.hash { try auditKey.append(c) }
        return c
    }

    /// Walks the whole chain: sequence numbers must be 1, 2, 3, …; each event's `prev_hash` must be
    /// the previous event's hash; each hash must be the keyed hash of the event's content. Then the
    /// chain is compared with every signed checkpoint (the server's checkpoint file and `extra`,
    /// e.g. from an export kept elsewhere): a checkpointed event that is gone or differs means the
    /// chain was cut or rewritten.
    public func verifyAudit(checkpoints extra: [AuditCheckpoint] = []) async throws -> AuditVerification {
        let key = auditKey
        var result = try await read { db -> AuditVerification in
            var expectedSeq: Int64 = 1
            var prevHash = ""
            var checked: Int64 = 0
            var after: Int64 = 0
            var byMethod: [String: Int64] = [:]
            while true {
                let rows = try await db.query(
                    "SELECT \(Self.auditColumns) FROM audit_events WHERE seq > ? ORDER BY seq LIMIT 5000", [.int(after)])
                if rows.isEmpty { break }
                for row in rows {
                    let e = Self.auditEvent(row)
                    if e.seq != expectedSeq {
                        return AuditVerification(
                            ok: false, checked: checked, firstBadSeq: expectedSeq,
                            problem: "event \(expectedSeq) is missing (the next event present is \(e.seq))")
                    }
                    if e.prevHash != prevHash {
                        return AuditVerification(
                            ok: false, checked: checked, firstBadSeq: e.seq,
                            problem: "event \(e.seq) does not chain to event \(e.seq - 1): its prev_hash differs from that event's hash")
                    }
                    if key.eventHash(e) != e.hash {
                        return AuditVerification(
                            ok: false, checked: checked, firstBadSeq: e.seq,
                            problem: "event \(e.seq) was altered or its hash recomputed without the server key: its content no longer matches its keyed hash")
                    }
                    if e.authenticated {
                        let method = e.authFields["auth_method"]?.stringValue ?? "unknown"
                        byMethod[method, default: 0] += 1
                    }
                    prevHash = e.hash
                    expectedSeq += 1
                    checked += 1
                    after = e.seq
                }
            }
            var result = AuditVerification(ok: true, checked: checked, firstBadSeq: nil, problem: nil)
            result.headSeq = checked
            result.headHash = prevHash
            result.authenticatedByMethod = byMethod
            return result
        }
        guard result.ok else { return result }
        // Checkpoints: the file's, then any supplied. An unsigned or mis-signed line is itself a finding.
        var all: [AuditCheckpoint] = []
        for (i, c) in (key.readCheckpoints() + extra.map { Optional($0) }).enumerated() {
            guard let c, key.isAuthentic(c) else {
                result.ok = false
                result.problem = "checkpoint \(i + 1) is not signed with this server's key: the checkpoint record was altered"
                return result
            }
            all.append(c)
        }
        result.checkpoints = all.count
        guard let newest = all.max(by: { $0.seq < $1.seq }) else { return result }
        let headSeq = result.headSeq ?? 0
        if newest.seq > headSeq {
            result.ok = false
            result.firstBadSeq = headSeq + 1
            result.problem =
                "the chain ends at event \(headSeq) but a signed checkpoint shows event \(newest.seq) existed: events \(headSeq + 1)–\(newest.seq) were cut from the end"
            return result
        }
        let seqs = all.map(\.seq)
        let hashes = try await read { db -> [Int64: String] in
            var out: [Int64: String] = [:]
            for seq in seqs {
                if let row = try await db.queryOne("SELECT hash FROM audit_events WHERE seq = ?", [.int(seq)]) { out[seq] = row.string(0) }
            }
            return out
        }
        for c in all.sorted(by: { $0.seq < $1.seq }) where hashes[c.seq] != c.hash {
            result.ok = false
            result.firstBadSeq = c.seq
            result.problem = "event \(c.seq) differs from the signed checkpoint of it: the chain was rewritten from there on"
            return result
        }
        return result
    }
}
