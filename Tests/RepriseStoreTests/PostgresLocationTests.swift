import ReprisePostgres
import Testing

@Suite("PostgreSQL URIs")
struct PostgresLocationTests {
    @Test func readsTheSpellingsUsersHave() throws {
        let a = try PostgresLocation(uri: "postgresql+psycopg2://ml:p%40ss%3Aw0rd@db.internal:6543/tracking?sslmode=verify-full&sslrootcert=/etc/ca.pem")
        #expect(a.host == "db.internal" && a.port == 6543 && a.username == "ml" && a.password == "p@ss:w0rd" && a.database == "tracking")
        #expect(a.sslMode == "verify-full" && a.rootCertificate == "/etc/ca.pem")
        let b = try PostgresLocation(uri: "postgres://ml@localhost/reprise")
        #expect(b.port == 5432 && b.password == nil && b.sslMode == "prefer")
        #expect(PostgresLocation.isPostgres("postgresql://x@h/d") && !PostgresLocation.isPostgres("sqlite:///x.db"))
    }

    @Test func refusesWhatCannotWorkAndNeverRepeatsThePassword() {
        for bad in [
            "postgresql://user:hunter2@/db", "postgresql://:hunter2@host/db", "postgresql://user:hunter2@host/",
            "postgresql://user:hunter2@host/db?sslmode=sometimes",
        ] {
            do {
                _ = try PostgresLocation(uri: bad)
                Issue.record("accepted \(bad)")
            } catch {
                #expect(!"\(error)".contains("hunter2"), "\(error)")
            }
        }
        #expect(PostgresLocation.redacted("postgresql://user:hunter2@host:5432/db") == "postgresql://user:***@host:5432/db")
        #expect(PostgresLocation.redacted("postgresql://user@host/db") == "postgresql://user@host/db")
    }
}
