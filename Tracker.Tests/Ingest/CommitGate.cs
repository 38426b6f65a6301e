using Npgsql;
using static Tracker.Tests.Infrastructure.IngestClient;

namespace Tracker.Tests.Ingest;

/// <summary>
/// Holds every ingest COMMIT of one database (or only those holding one client's logs) at its very end until
/// released: a deferred trigger on the rollups waits for an advisory lock the gate holds. The writer is then busy
/// with one batch while requests queue behind it, so tests can arrange what shares a batch, or see an answer that
/// comes before the commit.
/// </summary>
public sealed class CommitGate : IAsyncDisposable
{
    private const int LockKey = 7;
    private readonly NpgsqlConnection _holder;
    private bool _held = true;

    private CommitGate(NpgsqlConnection holder) => _holder = holder;

    public static async Task<CommitGate> CloseAsync(string connectionString, Guid? onlyClient = null)
    {
        var held = onlyClient is { } client ? $"NEW.client_id = '{client}'" : "true";
        await ExecuteAsync(connectionString, $"""
            CREATE OR REPLACE FUNCTION hold_commit() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN IF {held} THEN PERFORM pg_advisory_xact_lock_shared({LockKey}); END IF; RETURN NULL; END $$;
            CREATE CONSTRAINT TRIGGER hold_commit AFTER INSERT OR UPDATE ON usage_hourly_details
                DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION hold_commit();
            """);
        var holder = new NpgsqlConnection(connectionString);
        await holder.OpenAsync();
        await using var hold = new NpgsqlCommand($"SELECT pg_advisory_lock({LockKey})", holder);
        await hold.ExecuteNonQueryAsync();
        return new CommitGate(holder);
    }

    /// <summary>How many COMMITs wait at the gate now.</summary>
    public static Task<long> WaitingAsync(string adminConnectionString) => ScalarAsync(adminConnectionString,
        "SELECT count(*) FROM pg_stat_activity WHERE query = 'COMMIT' AND wait_event_type = 'Lock'");

    public async Task OpenAsync()
    {
        if (_held)
        {
            _held = false;
            await using var release = new NpgsqlCommand($"SELECT pg_advisory_unlock({LockKey})", _holder);
            await release.ExecuteNonQueryAsync();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _holder.DisposeAsync();
    }
}
