import Crypto
import Foundation
import RepriseCore

/// Seals secrets (webhook signing secrets) before they reach the database: AES-256-GCM under a key
/// derived from the server's key material. Every server process sharing a database must be given the
/// same key material.
public struct SecretSealer: Sendable {
    private let key: SymmetricKey
    static let format = "aesgcm1:"

    /// - Parameter keyMaterial: any bytes with enough entropy (a generated 32-byte key, or a passphrase
    ///   from the environment); SHA-256 turns it into the AES key.
    public init(keyMaterial: [UInt8]) {
        key = SymmetricKey(data: SHA256.hash(data: keyMaterial))
    }

    /// A sealer with a random key that lives as long as the process: for tests and throwaway stores.
    public static func ephemeral() -> SecretSealer {
        SecretSealer(keyMaterial: SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) })
    }

    /// Fresh random key material, base64: what a new server writes to its key file.
    public static func generateKeyMaterial() -> String {
        SymmetricKey(size: .bits256).withUnsafeBytes { Data($0).base64EncodedString() }
    }

    public func seal(_ secret: String) throws -> String {
        let box = try AES.GCM.seal(Data(secret.utf8), using: key)
        guard let combined = box.combined else { throw RepriseError(.internalError, "Could not seal a secret.") }
        return Self.format + combined.base64EncodedString()
    }

    public func open(_ sealed: String) throws -> String {
        guard sealed.hasPrefix(Self.format), let data = Data(base64Encoded: String(sealed.dropFirst(Self.format.count))) else {
            throw RepriseError(.internalError, "A stored secret is not in a format this server reads.")
        }
        do {
            let plain = try AES.GCM.open(try AES.GCM.SealedBox(combined: data), using: key)
            return String(decoding: plain, as: UTF8.self)
        } catch {
            throw RepriseError(
                .internalError,
                "A stored webhook secret cannot be decrypted with this server's key. Start every server that shares the database with the same REPRISE_SECRET_KEY (or key file).")
        }
    }
}
