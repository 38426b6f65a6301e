using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Metadata.Builders;
using Tracker.Data.Entities;

namespace Tracker.Data.Configurations;

internal sealed class ApiKeyConfiguration : IEntityTypeConfiguration<ApiKey>
{
    public void Configure(EntityTypeBuilder<ApiKey> builder)
    {
        builder.ToTable("api_keys", table => table.HasCheckConstraint(
            "ck_api_keys_key_hash_length", $"octet_length(key_hash) = {ApiKey.KeyHashLength}"));
        builder.HasKey(key => key.Id).HasName("pk_api_keys");
        builder.Property(key => key.Id).ValueGeneratedNever();
        builder.Property(key => key.Name).HasMaxLength(ApiKey.NameMaxLength);
        builder.Property(key => key.Prefix).HasMaxLength(ApiKey.PrefixLength).IsFixedLength();
        builder.Property(key => key.KeyHash).HasColumnType("bytea");
        builder.Property(key => key.CreatedAt).HasColumnType("timestamptz");
        builder.Property(key => key.LastUsedAt).HasColumnType("timestamptz");
        builder.Property(key => key.RevokedAt).HasColumnType("timestamptz");

        builder.HasOne(key => key.Client)
            .WithMany(client => client.ApiKeys)
            .HasForeignKey(key => key.ClientId)
            .HasConstraintName("fk_api_keys_clients_client_id")
            .OnDelete(DeleteBehavior.Cascade);

        // The lookup on every authenticated ingest cache miss; unique so two keys can never share a hash.
        builder.HasIndex(key => key.KeyHash).IsUnique().HasDatabaseName("ux_api_keys_key_hash");
        builder.HasIndex(key => key.ClientId).HasDatabaseName("ix_api_keys_client_id");
    }
}
