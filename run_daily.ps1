# The nightly run on Windows (Task Scheduler): the same steps, lock, log and failure alert as run_daily.sh.
#
#   powershell -ExecutionPolicy Bypass -File run_daily.ps1 [-Config config.yaml] [-AsOf 2025-03-10] [-From 0]
#              [-Demo [-DemoDays 730] [-DemoNights 1]] [-Set KEY=VALUE] [-Publish]
#
# -Demo writes the synthetic demo exports (the -DemoDays days before the as-of) into the inbox first; a later as-of
# adds only the new days' files. -DemoNights N (implies -Demo) replays N nights ending at the as-of: night 1 is the
# as-of minus N-1 days, each night adds its day's export and runs every step with its own as-of (needs an inbox
# without exports of those nights; not with -From). The same options as run_daily.sh --help.
#
# -Set overrides config keys for every step (several from a PowerShell prompt: -Set 'a.b=1','c.d=2'). Steps 2 and 3
# then run as a what-if: the model is registered as staging, never promoted, and the forecast and staffing go to
# <report.output_dir>/<as-of>/whatif-<run_id>/, not to gold (keys of database.*, source.*, report.* and
# training.model_dir only say where things are and do not count). -Publish: steps 2 and 3 publish as usual.
#
# Task Scheduler: Action "Start a program", Program "powershell.exe",
#   Arguments "-NoProfile -ExecutionPolicy Bypass -File C:\wfm-forecast\run_daily.ps1 -Config config.yaml",
#   Start in "C:\wfm-forecast", Trigger daily at 02:00, "Do not start a new instance" if it is still running.
param(
    [string]$Config = $(if ($env:WFM_CONFIG) { $env:WFM_CONFIG } else { "config.yaml" }),
    [string]$AsOf = "",
    [string]$From = "0",
    [switch]$Demo,
    [int]$DemoDays = 730,
    [int]$DemoNights = 1,
    [string[]]$Set = @(),
    [switch]$Publish
)
$ErrorActionPreference = "Stop"
Set-Location -Path $PSScriptRoot

# Environment: a virtual environment with the pinned requirements, created on first use.
$py = Join-Path $PSScriptRoot ".venv\Scripts\python.exe"
if (-not (Test-Path $py)) {
    Write-Host "run_daily.ps1: creating .venv and installing requirements (first run only)..."
    python -m venv .venv
}
$reqHash = (Get-FileHash requirements.txt -Algorithm SHA256).Hash.ToLower()
$stamp = Join-Path $PSScriptRoot ".venv\.requirements.sha256"
if (-not (Test-Path $stamp) -or (Get-Content $stamp) -ne $reqHash) {
    & $py -m pip install --quiet --disable-pip-version-check -r requirements.txt
    if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
    Set-Content -Path $stamp -Value $reqHash
}

# One run at a time: an exclusive handle on the lock file; Windows releases it when the process dies.
New-Item -ItemType Directory -Force -Path data, logs | Out-Null
try {
    $lock = [System.IO.File]::Open((Join-Path $PSScriptRoot "data\.run_daily.lock"), "OpenOrCreate", "ReadWrite", "None")
} catch {
    Write-Error "run_daily.ps1: another run is in progress (data\.run_daily.lock is held); not starting a second one"
    exit 3
}

try {
    if ($DemoDays -lt 1 -or $DemoNights -lt 1) { Write-Error "run_daily.ps1: -DemoDays and -DemoNights: give a whole number >= 1"; exit 2 }
    if ($DemoNights -gt 1 -and $From -ne "0") { Write-Error "run_daily.ps1: -DemoNights replays whole nights; -From $From cannot be combined with it"; exit 2 }
    if (-not $AsOf) {
        $AsOf = & $py -c "import sys; from common.config import load_config; from common.cli import today_in; print(today_in(load_config(sys.argv[1]).timezone))" $Config
    }
    $log = "logs\run_daily_${AsOf}_$(Get-Date -Format HHmmss).log"
    "run_daily.ps1: as_of=$AsOf config=$Config from=$From log=$log" | Tee-Object -FilePath $log -Append
    $steps = [ordered]@{ "0" = "0_load_bronze.py"; "1" = "1_build_silver.py"; "1_5" = "1_5_segment_customers.py";
                         "2" = "2_train.py"; "3" = "3_forecast.py"; "4" = "4_evaluate.py";
                         "6" = "6_capacity_plan.py"; "5" = "5_report.py" }
    if (-not $steps.Contains($From)) { Write-Error "run_daily.ps1: -From $From is not a step ($($steps.Keys -join ', '))"; exit 2 }
    $setArgs = @()
    foreach ($item in $Set) { $setArgs += @("--set", $item) }

    # One night: the steps in order for one as-of, from -From; exits at the first failing step.
    function Invoke-Night([string]$Night) {
        $started = $false
        foreach ($id in $steps.Keys) {
            if ($id -eq $From) { $started = $true }
            if (-not $started) { "run_daily.ps1: skipping step $id ($($steps[$id])): -From $From" | Tee-Object -FilePath $log -Append; continue }
            "run_daily.ps1: step ${id}: $($steps[$id])" | Tee-Object -FilePath $log -Append
            $stepArgs = $setArgs
            if ($Publish -and ($id -eq "2" -or $id -eq "3" -or $id -eq "6")) { $stepArgs += "--publish" }  # steps 2, 3, 6 only
            & $py $steps[$id] --config $Config --as-of $Night @stepArgs 2>&1 | Tee-Object -FilePath $log -Append
            $rc = $LASTEXITCODE
            if ($rc -ne 0) {
                "run_daily.ps1: FAILED at step $id ($($steps[$id])) with exit code $rc; fix it and resume with: run_daily.ps1 -AsOf $Night -From $id" | Tee-Object -FilePath $log -Append
                & $py -m common.mail --config $Config --failure --subject "wfm-forecast FAILED at step $id for $Night (exit $rc)" --log-file $log
                & $py -m common.chat --config $Config --failure --subject "wfm-forecast FAILED at step $id for $Night (exit $rc)" --log-file $log
                exit $rc
            }
        }
    }

    if ($DemoNights -gt 1) {
        # A replay: night 1 is the as-of minus N-1 days; each night adds its own day's export, then runs every step.
        $end = [datetime]::ParseExact($AsOf, "yyyy-MM-dd", [System.Globalization.CultureInfo]::InvariantCulture)
        for ($i = 0; $i -lt $DemoNights; $i++) {
            $night = $end.AddDays(-($DemoNights - 1 - $i)).ToString("yyyy-MM-dd")
            "run_daily.ps1: night $($i + 1) of ${DemoNights}: as_of=$night" | Tee-Object -FilePath $log -Append
            $replay = @()
            if ($i -eq 0) { $replay = @("--replay-start") }
            & $py -m common.demo --config $Config --as-of $night --days $DemoDays @replay 2>&1 | Tee-Object -FilePath $log -Append
            if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
            Invoke-Night $night
        }
        "run_daily.ps1: all steps succeeded for $DemoNights nights, ending $AsOf" | Tee-Object -FilePath $log -Append
        exit 0
    }
    if ($Demo) {
        & $py -m common.demo --config $Config --as-of $AsOf --days $DemoDays 2>&1 | Tee-Object -FilePath $log -Append
        if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
    }
    Invoke-Night $AsOf
    "run_daily.ps1: all steps succeeded for $AsOf" | Tee-Object -FilePath $log -Append
} finally {
    $lock.Close()
}
