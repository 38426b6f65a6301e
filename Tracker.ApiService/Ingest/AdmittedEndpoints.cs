using Tracker.ApiService.Usage;

namespace Tracker.ApiService.Ingest;

/// <summary>
/// Endpoints this instance has seen committed among a client-hour's names (<c>usage_hourly_endpoints</c>), for the
/// current and the previous UTC hour. A batch whose cells name only such endpoints adds no name, so
/// <see cref="DetailedRollup"/> writes it without the endpoint cap's lookups, and the cap still holds: only names
/// already counted against it are used. Single logs arrive a few dozen to a commit, nearly always of endpoints
/// their hour already knows; the lookups were most of what the detailed rollup cost them.
/// </summary>
/// <remarks>
/// Bounded: older hours are forgotten (rollup retention deletes only far older names, so it can never meet a
/// remembered one), and past <see cref="MaxNames"/> nothing more is remembered until the hour turns; forgetting
/// only costs the lookups again.
/// </remarks>
public sealed class AdmittedEndpoints(TimeProvider time)
{
    private const int MaxNames = 65_536;

    private readonly Lock _lock = new();
    private readonly HashSet<(Guid ClientId, DateTime HourStart, string Endpoint)> _names = [];
    private DateTime _currentHour;

    /// <summary>Whether <paramref name="endpoint"/> is known to be among the client-hour's committed names.</summary>
    public bool Contains(Guid clientId, DateTime hourStart, string endpoint)
    {
        lock (_lock)
        {
            return _names.Contains((clientId, hourStart, endpoint));
        }
    }

    /// <summary>Remembers names that a transaction, now committed, stored or found.</summary>
    public void Remember(IReadOnlyList<(Guid ClientId, DateTime HourStart, string Endpoint)> names)
    {
        var currentHour = UsageClock.CurrentHour(time);
        lock (_lock)
        {
            if (currentHour != _currentHour)
            {
                _currentHour = currentHour;
                _names.RemoveWhere(name => name.HourStart < currentHour.AddHours(-1));
            }

            foreach (var name in names)
            {
                if (name.HourStart >= currentHour.AddHours(-1) && _names.Count < MaxNames)
                {
                    _names.Add(name);
                }
            }
        }
    }
}
