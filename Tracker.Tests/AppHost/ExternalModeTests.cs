using Tracker.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Tracker.Tests.AppHost;

/// <summary>External mode: the AppHost runs no server and uses the ones its connection strings name.</summary>
[Collection(nameof(WholeSystem))]
public sealed class ExternalModeTests(ServersFixture servers, ITestOutputHelper output)
{
    [Fact]
    public async Task AppHost_uses_the_servers_named_by_its_connection_strings()
    {
        // A database that does not exist yet: the migration worker creates it, as on a new managed server.
        var database = $"tracker_external_{Guid.NewGuid():N}"[..40];
        try
        {
            await WholeSystemTests.AssertSystemComesUpAsync(
            [
                "Tracker:Infrastructure=External",
                $"ConnectionStrings:trackerdb={servers.Postgres.ConnectionStringFor(database)}",
                $"ConnectionStrings:cache={servers.Redis.ConnectionString}",
            ], output);
        }
        finally
        {
            await servers.Postgres.DropDatabaseAsync(database);
        }
    }
}
