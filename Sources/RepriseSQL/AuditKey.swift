import Crypto
import Foundation
import RepriseCore

/// The keys behind the audit trail, derived from the server secret (which lives outside the
/// database): one keys the hash chain, so that someone who can edit the database but does not hold
/// the secret cannot recompute the chain after rewriting or deleting events; the other signs head
/// checkpoints, which are kept outside the database (a file beside it, and every `audit export`) so
/// that cutting events from the end of the chain is detected too.
public struct AuditKey: Sendable {
    /// HMAC state already keyed with the chain key: each event copies it, so the key is processed
    /// once per server rather than once per write (this is on every write's path).
    let chainHMAC: HMAC<SHA256>
    let checkpointKey: SymmetricKey
    /// Where signed head checkpoints are appended; nil keeps none (tests, read-only tools).
    public let checkpointFile: String?

    /// - Parameters:
    ///   - keyMaterial: the server secret.
    ///   - checkpointFile: the file that keeps signed head checkpoints, outside the database.
    public init(keyMaterial: [UInt8], checkpointFile: String?) {
        let root = SymmetricKey(data: keyMaterial)
        let chainKey = SymmetricKey(data: Array(HMAC<SHA256>.authenticationCode(for: Array("reprise/audit-chain/v1".utf8), using: root)))
        chainHMAC = HMAC<SHA256>(key: chainKey)
        checkpointKey = SymmetricKey(
            data: Array(HMAC<SHA256>.authenticationCode(for: Array("reprise/audit-checkpoint/v1".utf8), using: root)))
        self.checkpointFile = checkpointFile
    }

    /// A random key for tests and throwaway stores.
    public static func ephemeral() -> AuditKey {
        AuditKey(keyMaterial: SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }, checkpointFile: nil)
    }

    /// The keyed hash of one event: HMAC-SHA256 over its canonical bytes (which include the previous hash).
    func eventHash(_ event: AuditEvent) -> String {
        var mac = chainHMAC
        mac.update(data: event.canonicalBytes)
        return Hex.encode(mac.finalize())
    }

    /// The signature of a checkpoint: HMAC-SHA256 over `seq.hash.time`.
    func signature(seq: Int64, hash: String, time: Int64) -> String {
        Hex.encode(HMAC<SHA256>.authenticationCode(for: Array("\(seq).\(hash).\(time)".utf8), using: checkpointKey))
    }

    /// A signed checkpoint of the chain's head.
    public func checkpoint(seq: Int64, hash: String, time: Int64) -> AuditCheckpoint {
        AuditCheckpoint(seq: seq, hash: hash, time: time, signature: signature(seq: seq, hash: hash, time: time))
    }

    /// Whether a checkpoint was signed with this key.
    public func isAuthentic(_ c: AuditCheckpoint) -> Bool {
        signature(seq: c.seq, hash: c.hash, time: c.time) == c.signature
    }

    /// Appends a checkpoint to the checkpoint file and makes it durable.
    func append(_ c: AuditCheckpoint) throws {
        guard let checkpointFile else { return }
        let line = c.json.jsonString + "\n"
        let fd = open(checkpointFile, O_WRONLY | O_CREAT | O_APPEND, 0o600)
        guard fd >= 0 else { throw RepriseError(.internalError, "Cannot write the audit checkpoint file (errno \(errno)).") }
        defer { close(fd) }
        let bytes = Array(line.utf8)
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard written == bytes.count, fsync(fd) == 0 else {
            throw RepriseError(.internalError, "Cannot write the audit checkpoint file (errno \(errno)).")
        }
    }

    /// The checkpoints in the checkpoint file, oldest first; unreadable lines are returned as nil.
    func readCheckpoints() -> [AuditCheckpoint?] {
        guard let checkpointFile, let data = FileManager.default.contents(atPath: checkpointFile) else { return [] }
        var lines = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
        // Every complete line ends with a newline; a fragment after the last one is a write cut
        // short by a crash, not a forgery, and is skipped.
        lines.removeLast()
        return lines.filter { !$0.isEmpty }.map { AuditCheckpoint(json: try? JSONValue.parse(String($0))) }
    }
}

