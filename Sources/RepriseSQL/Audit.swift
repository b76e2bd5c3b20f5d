import Crypto
import RepriseCore

/// Appends audit events inside the transaction of the write they describe, so an event exists
/// exactly when its change does.
struct Auditor: Sendable {
    let context: WriteContext

    static func sha256Hex(_ bytes: [UInt8]) -> String {
        SHA256.hash(data: bytes).map { byte in
            let s = String(byte, radix: 16)
            return byte < 16 ? "0" + s : s
        }.joined()
    }

    /// Appends one event chained to the last one.
    /// - Parameters:
    ///   - action: what happened, e.g. `run.log_batch`, `alias.move`.
    ///   - entityType: `experiment`, `run`, `logged_model`, `registered_model`, `model_version`, `alias`, `approval_request`, `alias_policy`.
    ///   - entityID: the entity's id (`name/version` for versions, `name@alias` for aliases).
    ///   - summary: a compact before/after description.
    func record(
        _ db: any SQLConnection, _ action: String, _ entityType: String, _ entityID: String, _ summary: JSONValue = [:]
    ) throws {
        let last = try db.queryOne("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1", [])
        var event = AuditEvent(
            seq: (last?.int(0) ?? 0) + 1, time: SQLTrackingStore.now(), actor: context.actor,
            authenticated: context.authenticated, action: action, entityType: entityType, entityID: entityID,
            summary: summary.jsonString, requestID: context.requestID, prevHash: last?.string(1) ?? "", hash: "")
        event.hash = Self.sha256Hex(event.canonicalBytes)
        try db.execute(
            "INSERT INTO audit_events (seq, time, actor, authenticated, action, entity_type, entity_id, summary, request_id, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [.int(event.seq), .int(event.time), .text(event.actor), .int(event.authenticated ? 1 : 0), .text(event.action),
             .text(event.entityType), .text(event.entityID), .text(event.summary), .text(event.requestID),
             .text(event.prevHash), .text(event.hash)])
    }
}

extension SQLTrackingStore {
    /// A write whose body records its audit event(s) through the given auditor.
    func write<T: Sendable>(_ body: @escaping @Sendable (any SQLConnection, Auditor) throws -> T) async throws -> T {
        let auditor = Auditor(context: WriteContext.current)
        return try await driver.write { db in try body(db, auditor) }
    }

    static func auditEvent(_ row: SQLRow) -> AuditEvent {
        AuditEvent(
            seq: row.int(0), time: row.int(1), actor: row.string(2), authenticated: row.int(3) == 1, action: row.string(4),
            entityType: row.string(5), entityID: row.string(6), summary: row.string(7), requestID: row.string(8),
            prevHash: row.string(9), hash: row.string(10))
    }

    static let auditColumns = "seq, time, actor, authenticated, action, entity_type, entity_id, summary, request_id, prev_hash, hash"

    public func auditEvents(entityType: String?, entityID: String?, afterSeq: Int64, limit: Int) async throws -> [AuditEvent] {
        var sql = "SELECT \(Self.auditColumns) FROM audit_events WHERE seq > ?"
        var binds: [SQLValue] = [.int(afterSeq)]
        if let entityType, !entityType.isEmpty {
            sql += " AND entity_type = ?"
            binds.append(.text(entityType))
        }
        if let entityID, !entityID.isEmpty {
            // A model's events include its versions (`name/N`) and aliases (`name@alias`).
            let escaped = entityID.replacingOccurrences(of: "\\", with: "\\\\")
                .replacingOccurrences(of: "%", with: "\\%").replacingOccurrences(of: "_", with: "\\_")
            sql += " AND (entity_id = ? OR entity_id LIKE ? ESCAPE '\\' OR entity_id LIKE ? ESCAPE '\\')"
            binds += [.text(entityID), .text(escaped + "/%"), .text(escaped + "@%")]
        }
        sql += " ORDER BY seq LIMIT ?"
        binds.append(.int(Int64(max(1, min(limit, 100_000)))))
        let finalSQL = sql
        let finalBinds = binds
        return try await driver.read { db in try db.query(finalSQL, finalBinds).map(Self.auditEvent) }
    }

    /// Walks the whole chain: sequence numbers must be 1, 2, 3, …; each event's `prev_hash` must be
    /// the previous event's hash; each hash must match the event's content.
    public func verifyAudit() async throws -> AuditVerification {
        try await driver.read { db in
            var expectedSeq: Int64 = 1
            var prevHash = ""
            var checked: Int64 = 0
            var after: Int64 = 0
            while true {
                let rows = try db.query(
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
                    if Auditor.sha256Hex(e.canonicalBytes) != e.hash {
                        return AuditVerification(
                            ok: false, checked: checked, firstBadSeq: e.seq,
                            problem: "event \(e.seq) was altered: its content no longer matches its hash")
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
            return result
        }
    }
}
