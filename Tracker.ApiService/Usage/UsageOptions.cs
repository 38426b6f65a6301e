using System.ComponentModel.DataAnnotations;

namespace Tracker.ApiService.Usage;

/// <summary>Usage analytics (<c>Usage</c> section).</summary>
public sealed class UsageOptions
{
    public const string SectionName = "Usage";

    /// <summary>
    /// A log acknowledged with 201 shows in every usage answer, on every instance, within this many milliseconds.
    /// </summary>
    [Range(200, 60_000)]
    public int FreshnessMilliseconds { get; set; } = 2_000;

    /// <summary>
    /// Off, every analytics read queries PostgreSQL: for measuring or diagnosing the query path, not for production.
    /// </summary>
    public bool CacheAnswers { get; set; } = true;

    /// <summary>
    /// How often each instance folds the totals of the hours ingest has marked (<see cref="HourlyTotalsFold"/>): those
    /// of past hours, and those of the current hour marked <see cref="CurrentHourFoldSeconds"/> ago or more. Answers
    /// never wait for it; a marked hour is read from its detailed cells until it is folded.
    /// </summary>
    [Range(1, 3_600)]
    public int HourlyTotalsFoldSeconds { get; set; } = 5;

    /// <summary>
    /// How old a mark of the current UTC hour must be for the fold to take it (<see cref="HourlyTotalsFold"/>): a
    /// client that went quiet has its hour read from its cells for about this long, not until the hour ends. A busy
    /// client's next batch marks the hour again, so its hour is summed about this often, for nothing: lower it for
    /// cheaper reads of quiet clients, raise it for less work under the marks' lock.
    /// </summary>
    [Range(1, 3_600)]
    public int CurrentHourFoldSeconds { get; set; } = 300;

    internal TimeSpan Freshness => TimeSpan.FromMilliseconds(FreshnessMilliseconds);

    internal TimeSpan HourlyTotalsFoldInterval => TimeSpan.FromSeconds(HourlyTotalsFoldSeconds);

    /// <summary>How often an instance tells Redis which clients' usage it changed; changes in between coalesce.</summary>
    internal TimeSpan PublishInterval => Freshness / 4;

    /// <summary>How long an instance trusts the generation it last read from Redis.</summary>
    internal TimeSpan GenerationLifetime => Freshness / 2;
}
