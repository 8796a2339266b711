<?php
// echo_worker.php PORT FUNCTION: the echo job on PHP's gearman extension
// (Debian php-gearman), the worker a PHP shop runs today; for bench_echo.
$w = new GearmanWorker();
$w->addServer('127.0.0.1', (int)$argv[1]);
$w->addFunction($argv[2], function ($job) {
    return $job->workload();
});
while ($w->work()) {
}
