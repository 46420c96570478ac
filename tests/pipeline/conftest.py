"""Fixtures of the pipeline tests: ten real SciFact records and the stages run over them.

Nine records are about osteoporosis and fracture risk (bisphosphonate trials, a
meta-analysis, statins, bone densitometry); the last one, on newborn brain imaging, is
unrelated and ranked last. The records are copied verbatim from
``/work/shared/data/scifact/corpus.jsonl`` (``abstract`` joined with a space, as the
ingest stores it). SciFact carries no bibliographic fields; the authors, years, venues and
DOIs of the first two records are added here for the editor tests.
"""

from __future__ import annotations

from typing import Any

import pytest

from nomosx.models import (
    Author,
    Brief,
    BriefSource,
    Draft,
    GuardReport,
    Lineage,
    Reading,
    ScoredSource,
    Source,
)
from nomosx.pipeline.analyse import ExtractiveAnalyst
from nomosx.pipeline.guard import CitationGuard
from nomosx.pipeline.read import SentenceReader

QUESTION = "Do bisphosphonates reduce fracture risk in postmenopausal women with osteoporosis?"

RECORDS: list[dict[str, Any]] = [
    {
        "doc_id": 11246427,
        "title": (
            "Effect of alendronate on risk of fracture in women with low bone density but "
            "without vertebral fractures: results from the Fracture Intervention Trial."
        ),
        "abstract": (
            "CONTEXT Alendronate sodium reduces fracture risk in postmenopausal women who have "
            "vertebral fractures, but its effects on fracture risk have not been studied for "
            "women without vertebral fractures.   \nOBJECTIVE To test the hypothesis that 4 years "
            "of alendronate would decrease the risk of clinical and vertebral fractures in women "
            "who have low bone mineral density (BMD) but no vertebral fractures.   \nDESIGN "
            "Randomized, blinded, placebo-controlled trial.   \nSETTING Eleven community-based "
            "clinical research centers.   SUBJECTS Women aged 54 to 81 years with a femoral neck "
            "BMD of 0.68 g/cm2 or less (Hologic Inc, Waltham, Mass) but no vertebral fracture; "
            "4432 were randomized to alendronate or placebo and 4272 (96%) completed outcome "
            "measurements at the final visit (an average of 4.2 years later).   \nINTERVENTION "
            "All participants reporting calcium intakes of 1000 mg/d or less received a "
            "supplement containing 500 mg of calcium and 250 IU of cholecalciferol.Subjects were "
            "randomly assigned to either placebo or 5 mg/d of alendronate sodium for 2 years "
            "followed by 10 mg/d for the remainder of the trial.   \nMAIN OUTCOME MEASURES "
            "Clinical fractures confirmed by x-ray reports, new vertebral deformities detected "
            "by morphometric measurements on radiographs, and BMD measured by dual x-ray "
            "absorptiometry.   \nRESULTS Alendronate increased BMD at all sites studied (P<.001) "
            "and reduced clinical fractures from 312 in the placebo group to 272 in the "
            "intervention group, but not significantly so (14% reduction; relative hazard [RH], "
            "0.86; 95% confidence interval [CI], 0.73-1.01).Alendronate reduced clinical "
            "fractures by 36% in women with baseline osteoporosis at the femoral neck (>2.5 SDs "
            "below the normal young adult mean; RH, 0.64; 95% CI, 0.50-0.82; treatment-control "
            "difference, 6.5%; number needed to treat [NNT], 15), but there was no significant "
            "reduction among those with higher BMD (RH, 1.08; 95% CI, 0.87-1.35).Alendronate "
            "decreased the risk of radiographic vertebral fractures by 44% overall (relative "
            "risk, 0.56; 95% CI, 0.39-0.80; treatment-control difference, 1.7%; NNT, "
            "60).Alendronate did not increase the risk of gastrointestinal or other adverse "
            "effects.   \nCONCLUSIONS In women with low BMD but without vertebral fractures, 4 "
            "years of alendronate safely increased BMD and decreased the risk of first vertebral "
            "deformity.Alendronate significantly reduced the risk of clinical fractures among "
            "women with osteoporosis but not among women with higher BMD."
        ),
    },
    {
        "doc_id": 19878070,
        "title": (
            "Effects of risedronate treatment on vertebral and nonvertebral fractures in "
            "women with postmenopausal osteoporosis: a randomized controlled trial. "
            "Vertebral Efficacy With Risedronate Therapy (VERT) Study Group."
        ),
        "abstract": (
            "CONTEXT Risedronate, a potent bisphosphonate, has been shown to be effective in the "
            "treatment of Paget disease of bone and other metabolic bone diseases but, to our "
            "knowledge, it has not been evaluated in the treatment of established postmenopausal "
            "osteoporosis.   \nOBJECTIVE To test the efficacy and safety of daily treatment with "
            "risedronate to reduce the risk of vertebral and other fractures in postmenopausal "
            "women with established osteoporosis.   \nDESIGN, SETTING, AND PARTICIPANTS "
            "Randomized, double-blind, placebo-controlled trial of 2458 ambulatory "
            "postmenopausal women younger than 85 years with at least 1 vertebral fracture at "
            "baseline who were enrolled at 1 of 110 centers in North America conducted between "
            "December 1993 and January 1998.   \nINTERVENTIONS Subjects were randomly assigned to "
            "receive oral treatment for 3 years with risedronate (2.5 or 5 mg/d) or placebo.All "
            "subjects received calcium, 1000 mg/d.Vitamin D (cholecalciferol, up to 500 IU/d) "
            "was provided if baseline levels of 25-hydroxyvitamin D were low.   \nMAIN OUTCOME "
            "MEASURES Incidence of new vertebral fractures as detected by quantitative and "
            "semiquantitative assessments of radiographs; incidence of radiographically "
            "confirmed nonvertebral fractures and change from baseline in bone mineral density "
            "as determined by dual x-ray absorptiometry.   \nRESULTS The 2.5 mg/d of risedronate "
            "arm was discontinued after 1 year; in the placebo and 5 mg/d of risedronate arms, "
            "450 and 489 subjects, respectively, completed all 3 years of the trial.Treatment "
            "with 5 mg/d of risedronate, compared with placebo, decreased the cumulative "
            "incidence of new vertebral fractures by 41 % (95% confidence interval [CI], "
            "18%-58%) over 3 years (11.3 % vs 16.3%; P= .003).A fracture reduction of 65% (95% "
            "CI, 38%-81 %) was observed after the first year (2.4% vs 6.4%; P<.001).The "
            "cumulative incidence of nonvertebral fractures over 3 years was reduced by 39% (95% "
            "CI, 6%-61 %) (5.2 % vs 8.4%; P = .02).Bone mineral density increased significantly "
            "compared with placebo at the lumbar spine (5.4% vs 1.1 %), femoral neck (1.6% vs "
            "-1.2%), femoral trochanter (3.3% vs -0.7%), and midshaft of the radius (0.2% vs "
            "-1.4%).Bone formed during risedronate treatment was histologically normal.The "
            "overall safety profile of risedronate, including gastrointestinal safety, was "
            "similar to that of placebo.   \nCONCLUSIONS These data suggest that risedronate "
            "therapy is effective and well tolerated in the treatment of women with established "
            "postmenopausal osteoporosis."
        ),
    },
    {
        "doc_id": 26000593,
        "title": (
            "Effect of osteoporosis treatments on risk of non-vertebral fractures: review "
            "and meta-analysis of intention-to-treat studies"
        ),
        "abstract": (
            "Most osteoporosis treatments have proven efficacy in reducing the risk of vertebral "
            "fractures, whereas evidence is less straightforward for prevention of non-vertebral "
            "fractures.Conclusions as to the efficacy of a treatment should be based primarily "
            "on analyses of the intention to treat (ITT) population rather than on exploratory "
            "subgroup analyses; however, non-vertebral anti-fracture efficacy has been largely "
            "derived by post-hoc subgroup analyses.This review and meta-analysis was performed "
            "to assess non-vertebral anti-fracture efficacy of several osteoporosis therapies, "
            "including a more stringent assessment of the ITT populations.Data on non-vertebral "
            "anti-fracture efficacy, a defined endpoint of the ITT analyses and confirmed by "
            "radiographs, were obtained from randomized, placebo-controlled, phase III clinical "
            "trials of at least 3-year duration.Meta-analyses were performed for the two "
            "bisphosphonates, alendronate and risedronate.Relative risks (RR), 95% confidence "
            "intervals (CI) and statistical significance for active treatment compared with "
            "placebo were calculated.Eleven clinical trials met the criteria for review, three "
            "of which showed statistically significant ( P ≤0.05) non-vertebral anti-fracture "
            "efficacy in the ITT population: two trials with risedronate and one trial with "
            "strontium.A meta-analysis showed significant reductions in the relative risk of "
            "non-vertebral fracture for both alendronate (RR=0.86; 95% CI: 0.76–0.97, P =0.012) "
            "and risedronate (RR=0.81; 95% CI: 0.71–0.92, P =0.001).Risedronate and strontium "
            "ranelate were the only treatments to show non-vertebral anti-fracture efficacy in "
            "this robust assessment of anti-fracture efficacy of osteoporosis therapy using ITT "
            "populations in trials of 3 years or more in duration.Risedronate was the only agent "
            "shown to demonstrate efficacy in more than one trial.Meta-analysis showed that both "
            "alendronate and risedronate provide non-vertebral anti-fracture efficacy."
        ),
    },
    {
        "doc_id": 19205326,
        "title": "Ten years' experience with alendronate for osteoporosis in postmenopausal women.",
        "abstract": (
            "BACKGROUND Antiresorptive agents are widely used to treat osteoporosis.We report "
            "the results of a multinational randomized, double-blind study, in which "
            "postmenopausal women with osteoporosis were treated with alendronate for up to 10 "
            "years.   \nMETHODS The initial three-year phase of the study compared three daily "
            "doses of alendronate with placebo.Women in the original placebo group received "
            "alendronate in years 4 and 5 and then were discharged.Women in the original "
            "active-treatment groups continued to receive alendronate during the initial "
            "extension (years 4 and 5).In two further extensions (years 6 and 7, and 8 through "
            "10), women who had received 5 mg or 10 mg of alendronate daily continued on the "
            "same treatment.Women in the discontinuation group received 20 mg of alendronate "
            "daily for two years and 5 mg daily in years 3, 4, and 5, followed by five years of "
            "placebo.Randomized group assignments and blinding were maintained throughout the 10 "
            "years.We report results for the 247 women who participated in all four phases of "
            "the study.   \nRESULTS Treatment with 10 mg of alendronate daily for 10 years "
            "produced mean increases in bone mineral density of 13.7 percent at the lumbar spine "
            "(95 percent confidence interval, 12.0 to 15.5 percent), 10.3 percent at the "
            "trochanter (95 percent confidence interval, 8.1 to 12.4 percent), 5.4 percent at "
            "the femoral neck (95 percent confidence interval, 3.5 to 7.4 percent), and 6.7 "
            "percent at the total proximal femur (95 percent confidence interval, 4.4 to 9.1 "
            "percent) as compared with base-line values; smaller gains occurred in the group "
            "given 5 mg daily.The discontinuation of alendronate resulted in a gradual loss of "
            "effect, as measured by bone density and biochemical markers of bone "
            "remodeling.Safety data, including fractures and stature, did not suggest that "
            "prolonged treatment resulted in any loss of benefit.   \nCONCLUSIONS The therapeutic "
            "effects of alendronate were sustained, and the drug was well tolerated over a "
            "10-year period.The discontinuation of alendronate resulted in the gradual loss of "
            "its effects."
        ),
    },
    {
        "doc_id": 3613041,
        "title": (
            "Therapeutic equivalence of alendronate 70 mg once-weekly and alendronate 10 mg "
            "daily in the treatment of osteoporosis. Alendronate Once-Weekly Study Group."
        ),
        "abstract": (
            "Dosing convenience is a key element in the effective management of any chronic "
            "disease, and is particularly important in the long-term management of "
            "osteoporosis.Less frequent dosing with any medication may enhance compliance, "
            "thereby maximizing the effectiveness of therapy.Animal data support the rationale "
            "that once-weekly dosing with alendronate 70 mg (7 times the daily oral treatment "
            "dose) could provide similar efficacy to daily dosing with alendronate 10 mg due to "
            "its long duration of effect in bone.In addition, dog studies suggest that the "
            "potential for esophageal irritation, observed with daily oral bisphosphonates, may "
            "be substantially reduced with once-weekly dosing.This dosing regimen would provide "
            "patients with increased convenience and would be likely to enhance patient "
            "compliance.We compared the efficacy and safety of treatment with oral once-weekly "
            "alendronate 70 mg (N=519), twice-weekly alendronate 35 mg (N=369), and daily "
            "alendronate 10 mg (N=370) in a one-year, double-blind, multicenter study of "
            "postmenopausal women (ages 42 to 95) with osteoporosis (bone mineral density [BMD] "
            "of either lumbar spine or femoral neck at least 2.5 SDs below peak premenopausal "
            "mean, or prior vertebral or hip fracture).The primary efficacy endpoint was the "
            "comparability of increases in lumbar spine BMD, using strict pre-defined "
            "equivalence criteria.Secondary endpoints included changes in BMD at the hip and "
            "total body and rate of bone turnover, as assessed by biochemical markers.Both of "
            "the new regimens fully satisfied the equivalence criteria relative to daily "
            "therapy.Mean increases in lumbar spine BMD at 12 months were: 5.1% (95% CI 4.8, "
            "5.4) in the 70 mg once-weekly group, 5.2% (4.9, 5.6) in the 35 mg twice-weekly "
            "group, and 5.4% (5.0, 5.8) in the 10 mg daily treatment group.Increases in BMD at "
            "the total hip, femoral neck, trochanter, and total body were similar for the three "
            "dosing regimens.All three treatment groups similarly reduced biochemical markers of "
            "bone resorption (urinary N-telopeptides of type I collagen) and bone formation "
            "(serum bone-specific alkaline phosphatase) into the middle of the premenopausal "
            "reference range.All treatment regimens were well tolerated with a similar incidence "
            "of upper GI adverse experiences.There were fewer serious upper GI adverse "
            "experiences and a trend toward a lower incidence of esophageal events in the "
            "once-weekly dosing group compared to the daily dosing group.These data are "
            "consistent with preclinical animal models, and suggest that once-weekly dosing has "
            "the potential for improved upper GI tolerability.Clinical fractures, captured as "
            "adverse experiences, were similar among the groups.We conclude that the alendronate "
            "70 mg once-weekly dosing regimen will provide patients with a more convenient, "
            "therapeutically equivalent alternative to daily dosing, and may enhance compliance "
            "and long-term persistence with therapy."
        ),
    },
    {
        "doc_id": 17482507,
        "title": (
            "Systematic review of role of bisphosphonates on skeletal morbidity in "
            "metastatic cancer."
        ),
        "abstract": (
            "OBJECTIVE To review the evidence for the use of bisphosphonates to reduce skeletal "
            "morbidity in cancer patients with bone metastases.   \nDATA SOURCES Electronic "
            "databases, scanning reference lists, and consultation with experts and "
            "pharmaceutical companies.Foreign language papers were included.   STUDY SELECTION "
            "Included trials were randomised controlled trials of patients with malignant "
            "disease and bone metastases who were treated with oral or intravenous "
            "bisphosphonate compared with another bisphosphonate, placebo, or standard care.All "
            "trials measured at least one outcome of skeletal morbidity.   \nRESULTS 95 articles "
            "were identified; 30 studies fulfilled inclusion criteria.In studies that lasted > "
            "or = 6 months, compared with placebo bisphosphonates significantly reduced the odds "
            "ratio for fractures (vertebral 0.69, 95% confidence interval 0.57 to 0.84, P < "
            "0.0001; non-vertebral 0.65, 0.54 to 0.79, P < 0.0001; combined 0.65, 0.55 to 0.78, "
            "P < 0.0001), radiotherapy (0.67, 0.57 to 0.79, P < 0.0001), and hypercalcaemia "
            "(0.54, 0.36 to 0.81, P = 0.003) but not for orthopaedic surgery (0.70, 0.46 to "
            "1.05, P = 0.086) or spinal cord compression (0.71, 0.47 to 1.08, P = 0.113).The "
            "reduction in orthopaedic surgery was significant in studies that lasted over a year "
            "(0.59, 0.39 to 0.88, P = 0.009).Use of bisphosphonates significantly increased time "
            "to first skeletal related event but did not increase survival.Subanalyses showed "
            "that most evidence supports use of intravenous aminobisphosphonates.   \nCONCLUSIONS "
            "In people with metastatic bone disease bisphosphonates significantly decrease "
            "skeletal morbidity, except for spinal cord compression and increased time to first "
            "skeletal related event.Treatment should start when bone metastases are diagnosed "
            "and continue until it is no longer clinically relevant."
        ),
    },
    {
        "doc_id": 16812091,
        "title": "Clinical use of bone densitometry: scientific review.",
        "abstract": (
            "CONTEXT Osteoporosis causes substantial morbidity and costs $13.8 billion annually "
            "in the United States.Measurement of bone mass by densitometry is a primary part of "
            "diagnosing osteoporosis and deciding a preventive treatment course.Bone mineral "
            "densitometry has become more widely available and commonly used in practice.   "
            "\nOBJECTIVE To review evidence about the value of various clinical applications of "
            "bone densitometry.   \nDATA SOURCES A MEDLINE search was performed to update "
            "previous meta-analyses of the relationship between various measurements of bone "
            "density and risk of vertebral and hip fracture.We used data from the prospective "
            "Study of Osteoporotic Fractures to estimate risk of fracture from bone density and "
            "age in postmenopausal women.   STUDY SELECTION AND DATA EXTRACTION When available, "
            "meta-analyses and systematic reviews are emphasized in the review.   \nDATA "
            "SYNTHESIS Bone mineral density (BMD) predicts fracture and can be used in "
            "combination with age to estimate absolute risk of fractures in postmenopausal white "
            "women.Hip BMD predicts hip fracture more strongly than other measurements of "
            "BMD.There are insufficient data to translate BMD results into risk of fracture for "
            "men and nonwhite women.The benefits of treatments to prevent fractures depend on "
            "BMD: women with osteoporosis have a greater risk of fractures and greater benefit "
            "from treatments than women without osteoporosis.   \nCONCLUSIONS Guidelines based on "
            "systematic reviews and a cost-effectiveness analysis have suggested that it is "
            "worthwhile to measure BMD in white women older than 65 years and perhaps to use "
            "risk factors to select younger postmenopausal women for densitometry.Other "
            "potential clinical applications of BMD that have not yet been adequately studied "
            "include screening men or nonwhite women, monitoring BMD in patients receiving "
            "treatment, and using BMD to identify patients who should be evaluated for secondary "
            "causes of osteoporosis."
        ),
    },
    {
        "doc_id": 4687948,
        "title": "HMG-CoA reductase inhibitors and the risk of hip fractures in elderly patients.",
        "abstract": (
            "CONTEXT Recent animal studies have found that 3-hydroxy-3-methylglutaryl coenzyme A "
            "(HMG-CoA) lipid-lowering drugs (statins) substantially increase bone formation, but "
            "whether statin use in humans results in clinically meaningful bone formation or a "
            "reduction in the risk of osteoporotic fractures is not known.   \nOBJECTIVE To "
            "determine whether the use of statins is associated with reduced hip fracture risk.  "
            " \nDESIGN Case-control study.   \nSETTING AND PATIENTS A total of 6110 New Jersey "
            "residents aged 65 years or older and enrolled in Medicare and either Medicaid or "
            "the Pharmacy Assistance for the Aged and Disabled program.Case patients (n=1222) "
            "underwent surgical repair of a hip fracture in 1994.Control patients (n=4888) were "
            "identified at a ratio of 4:1 and frequency-matched to case patients for age and "
            "sex.   \nMAIN OUTCOME MEASURE Adjusted odds ratio (OR) of hip fracture by statin use "
            "in the 180 days and 3 years prior to the index date (the earliest date of admission "
            "for surgery), adjusted for demographic and clinical characteristics and health care "
            "utilization.   \nRESULTS Use of statins in either the prior 180 days (adjusted OR, "
            "0.50; 95% confidence interval [CI], 0.33-0.76) or prior 3 years (adjusted OR, 0.57; "
            "95% CI, 0.40-0.82) was associated with a significant reduction in the risk of hip "
            "fracture, even after controlling for variables such as race, insurance status, "
            "psychoactive medications, estrogen and thiazide use, ischemic heart disease, "
            "cancer, and diabetes mellitus.No significant relationship was observed between use "
            "of nonstatin lipid-lowering agents and hip fracture risk.Clear relationships were "
            "observed between the degree of reduction in hip fracture risk and the extent of "
            "statin use; there was no evidence of such relationships with nonstatin "
            "lipid-lowering agents.After adjusting for extent of statin use in the prior 3 "
            "years, current use (on the index date) was associated with a 71% reduction in risk "
            "(adjusted OR, 0.29; 95% CI, 0.10-0.81).The relationship between statin use and hip "
            "fracture risk persisted after controlling for variables such as the number of "
            "medications, the Charlson comorbidity index score, and hospitalization or nursing "
            "home stay in the last 180 days, as well as after excluding patients who were in a "
            "nursing home prior to their index date or who died in the year after their index "
            "date.Use of nonstatin lipid-lowering agents was not observed to be associated with "
            "reduction in hip fracture risk in any of these alternative models or analyses.   "
            "\nCONCLUSIONS These findings support an association between statin use by elderly "
            "patients and reduction in the risk of hip fracture.Controlled trials are needed to "
            "exclude the possibility of unmeasured confounders.JAMA.2000;283:3211-3216"
        ),
    },
    {
        "doc_id": 1711571,
        "title": (
            "Hyperglycemia is associated with increased bone mineral density and decreased "
            "trabecular bone score in elderly Japanese men: The Fujiwara-kyo osteoporosis "
            "risk in men (FORMEN) study."
        ),
        "abstract": (
            "PURPOSE Patients with type 2 diabetes mellitus (T2DM) have an increased fracture "
            "risk despite having higher areal bone mineral density (aBMD).This study aimed to "
            "clarify the association between glycemic and insulin resistance status and bone "
            "microarchitecture, and whether pentosidine and bone turnover markers play any roles "
            "in the association.   \nMETHODS A total of 2012 community-dwelling men aged ≥65years "
            "completed baseline measurements of spine aBMD, fasting plasma glucose (FPG) and "
            "serum insulin, hemoglobin A1c (HbA1c), osteocalcin, type I procollagen N-terminal "
            "propeptide, type I collagen C-terminal crosslinking telopeptide, tartrate-resistant "
            "acid phosphatase isoenzyme 5b, pentosidine, height and weight and an interview "
            "regarding past disease history.Homeostasis model assessment-insulin resistance "
            "(HOMA-IR) was also calculated.T2DM was defined as physician-diagnosed middle age or "
            "elderly-onset diabetes mellitus, or according to biochemical test results.To "
            "evaluate bone microarchitecture, trabecular bone score (TBS) was calculated at the "
            "same vertebrae as those used for aBMD measurement.   \nRESULTS After excluding "
            "participants who had a disease history and/or were taking medications affecting "
            "bone metabolism, 1683 men (age, 72.9±5.2years) were analyzed.Men with T2DM had "
            "significantly higher aBMD compared to those without T2DM.There was no significant "
            "difference in TBS.However, FPG, HbA1c and HOMA-IR levels were significantly "
            "inversely correlated with TBS after adjusting for age, BMI and aBMD.Multivariate "
            "linear regression analyses revealed that glycemic indices (FPG and HbA1c) were "
            "significantly associated with increased aBMD and decreased TBS, and that HOMA-IR "
            "was associated only with TBS.These associations did not change after further "
            "adjusting for bone turnover makers and pentosidine levels.   \nCONCLUSIONS "
            "Hyperglycemia and elevated insulin-resistance were associated with low TBS "
            "independently of bone turnover and pentosidine levels."
        ),
    },
    {
        "doc_id": 4983,
        "title": (
            "Microstructural development of human newborn cerebral white matter assessed in "
            "vivo by diffusion tensor magnetic resonance imaging."
        ),
        "abstract": (
            "Alterations of the architecture of cerebral white matter in the developing human "
            "brain can affect cortical development and result in functional disabilities.A line "
            "scan diffusion-weighted magnetic resonance imaging (MRI) sequence with diffusion "
            "tensor analysis was applied to measure the apparent diffusion coefficient, to "
            "calculate relative anisotropy, and to delineate three-dimensional fiber "
            "architecture in cerebral white matter in preterm (n = 17) and full-term infants (n "
            "= 7).To assess effects of prematurity on cerebral white matter development, early "
            "gestation preterm infants (n = 10) were studied a second time at term.In the "
            "central white matter the mean apparent diffusion coefficient at 28 wk was high, 1.8 "
            "microm2/ms, and decreased toward term to 1.2 microm2/ms.In the posterior limb of "
            "the internal capsule, the mean apparent diffusion coefficients at both times were "
            "similar (1.2 versus 1.1 microm2/ms).Relative anisotropy was higher the closer birth "
            "was to term with greater absolute values in the internal capsule than in the "
            "central white matter.Preterm infants at term showed higher mean diffusion "
            "coefficients in the central white matter (1.4 +/-0.24 versus 1.15 +/-0.09 "
            "microm2/ms, p = 0.016) and lower relative anisotropy in both areas compared with "
            "full-term infants (white matter, 10.9 +/- 0.6 versus 22.9 +/-3.0%, p = 0.001; "
            "internal capsule, 24.0 +/-4.44 versus 33.1 +/-0.6% p = 0.006).Nonmyelinated fibers "
            "in the corpus callosum were visible by diffusion tensor MRI as early as 28 wk; "
            "full-term and preterm infants at term showed marked differences in white matter "
            "fiber organization.The data indicate that quantitative assessment of water "
            "diffusion by diffusion tensor MRI provides insight into microstructural development "
            "in cerebral white matter in living infants."
        ),
    },
]

# Bibliographic fields SciFact lacks, for the editor tests.
METADATA: dict[int, dict[str, Any]] = {
    11246427: {
        "doi": "10.1001/jama.280.24.2077",
        "year": 1998,
        "venue": "JAMA",
        "authors": ["Cummings SR", "Black DM", "Thompson DE", "Applegate WB", "Barrett-Connor E"],
        "url": "https://jamanetwork.com/journals/jama/fullarticle/188213",
    },
    19878070: {
        "doi": "10.1001/jama.282.14.1344",
        "year": 1999,
        "venue": "JAMA",
        "authors": ["Harris ST", "Watts NB", "Genant HK"],
    },
}


def make_source(record: dict[str, Any]) -> Source:
    meta = METADATA.get(record["doc_id"], {})
    return Source(
        key=f"scifact:{record['doc_id']}",
        provider="scifact",
        provider_ids={"scifact": str(record["doc_id"])},
        title=record["title"],
        abstract=record["abstract"],
        doi=meta.get("doi"),
        year=meta.get("year"),
        venue=meta.get("venue"),
        url=meta.get("url"),
        authors=[Author(name=n) for n in meta.get("authors", [])],
    )


def rank(sources: list[Source]) -> list[ScoredSource]:
    """Wrap sources as ranked, best first, with made-up but ordered scores."""
    n = len(sources)
    return [
        ScoredSource(
            source=source,
            relevance=round(1.0 - i / n, 3),
            lexical=round(12.0 - i, 3),
            quality=0.5,
            novelty=0.5,
            score=round(1.0 - i / n, 3),
        )
        for i, source in enumerate(sources)
    ]


def numbered(ranked: list[ScoredSource]) -> list[BriefSource]:
    return [
        BriefSource(ref=i, source=s.source, relevance=s.relevance, quality=s.quality, score=s.score)
        for i, s in enumerate(ranked, start=1)
    ]


def abstract_of(ref: int) -> str:
    """The abstract of ``[SRC-ref]`` in the ranked fixture."""
    text: str = RECORDS[ref - 1]["abstract"]
    return text


@pytest.fixture
def ranked() -> list[ScoredSource]:
    return rank([make_source(r) for r in RECORDS])


@pytest.fixture
def brief_sources(ranked: list[ScoredSource]) -> list[BriefSource]:
    return numbered(ranked)


@pytest.fixture
async def readings(ranked: list[ScoredSource]) -> list[Reading]:
    return await SentenceReader().read(QUESTION, ranked)


@pytest.fixture
async def draft(ranked: list[ScoredSource], readings: list[Reading]) -> Draft:
    return await ExtractiveAnalyst().analyse(QUESTION, ranked, readings)


@pytest.fixture
async def guarded(draft: Draft, brief_sources: list[BriefSource]) -> tuple[Draft, GuardReport]:
    return await CitationGuard().guard(draft, brief_sources)


@pytest.fixture
def brief(guarded: tuple[Draft, GuardReport], brief_sources: list[BriefSource]) -> Brief:
    final, report = guarded
    return Brief(
        id="brief-test",
        question=QUESTION,
        title=final.title,
        mode="extractive",
        sections=final.sections,
        sources=brief_sources,
        guard=report,
        lineage=Lineage(question=QUESTION, analyst=final.analyst, providers=["scifact"]),
    )
